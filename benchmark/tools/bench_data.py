"""Time the data pipeline: generate each synthetic variant, load it, and iterate once over its training split.

Run ``python -m msabench.tools.bench_data`` (``--help`` for options). Generation goes to a temporary cache
directory, so the numbers include writing, hashing and reading back the pickle, as a first run does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from msabench.datamodules import build_datamodule
from msabench.datamodules.synthetic import (
    SYNTHETIC_DATASETS,
    encoder_dir,
    generate,
    get_recipe,
    synthetic_encoder,
    write_pickle,
)
from msabench.datamodules.synthetic.text import save_encoder


def bench(name: str, n_scale: float, batch_size: int, cache_dir: Path) -> dict[str, float]:
    """Seconds to generate, write, load and iterate once over the training split of one variant."""
    start = time.perf_counter()
    encoder = synthetic_encoder(name) if get_recipe(name).text_ids else None
    data = generate(name, seed=0, n_scale=n_scale, encoder=encoder)
    generated = time.perf_counter()
    path = write_pickle(data, cache_dir / f"{name}.pkl")
    if encoder is not None:
        save_encoder(encoder, encoder_dir(path))
    del data
    written = time.perf_counter()
    dm = build_datamodule(
        name,
        data_path=path,
        train_policy=None,
        validation=[],
        test=[],
        seed=0,
        batch_size=batch_size,
        cache_dir=cache_dir,
    )
    dm.setup()
    loaded = time.perf_counter()
    batches = sum(1 for _ in dm.train_dataloader())
    passed = time.perf_counter()
    return {
        "generate_s": generated - start,
        "write_s": written - generated,
        "load_s": loaded - written,
        "train_pass_s": passed - loaded,
        "batches": batches,
        "samples": sum(dm.split_sizes.values()),
        "mb": path.stat().st_size / 2**20,
    }


def main(argv: list[str] | None = None) -> None:
    """Print one line per variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(SYNTHETIC_DATASETS), choices=SYNTHETIC_DATASETS)
    parser.add_argument("--n-scale", type=float, default=1.0, help="multiply the sample counts")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    header = (
        f"{'variant':<18} {'samples':>7} {'MB':>7} {'generate':>9} {'write':>7} {'load':>7} {'1 epoch':>8}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as cache_dir:
        for name in args.variants:
            r = bench(name, args.n_scale, args.batch_size, Path(cache_dir))
            print(
                f"{name:<18} {r['samples']:>7.0f} {r['mb']:>7.0f} {r['generate_s']:>8.2f}s "
                f"{r['write_s']:>6.2f}s "
                f"{r['load_s']:>6.2f}s {r['train_pass_s']:>7.2f}s  ({r['batches']:.0f} batches of "
                f"{args.batch_size})"
            )


if __name__ == "__main__":
    main()
