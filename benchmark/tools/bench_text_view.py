"""Measure the stored-text leak and its fix: every method trained and tested with both text views.

Usage::

    python -m msabench.tools.bench_text_view                          # every method, the default data, lnln
    python -m msabench.tools.bench_text_view --methods derl,umdf --output results/bench_text_view

For each method, one model per text view (``stored``: dropped tokens zeroed in BERT-style contextual features;
``reencoded``: the damaged sentence re-encoded by the data's own encoder) is trained under the same policy
(``lnln`` by default: one model serves every rate, so the leak compares across methods) and tested at
intra r = 0.0, 0.5 and 1.0. At r = 1.0 only ``[CLS]`` and ``[SEP]`` remain: with the stored view they still
summarise the complete sentence. It prints test Has0 Acc-2 (%) per view and rate, then what re-encoding
costs: seconds per training epoch (the policy's batches with and without re-encoding) and per test setting
(the whole test split re-encoded once).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from msabench.models import canonical_name, names
from msabench.protocols import Setting
from msabench.runner import RunRequest, execute, prepare, quiet_lightning

RATES = (0.0, 0.5, 1.0)
VIEWS = ("stored", "reencoded")


def leak_table(
    methods: list[str], policy: str, seed: int, output: Path, overrides: list[str]
) -> pd.DataFrame:
    """Test Has0 Acc-2 per method, view and rate (one trained model per method and view)."""
    rows: list[dict[str | float, Any]] = []
    for method in methods:
        for view in VIEWS:
            request = RunRequest(
                method=method,
                settings=[Setting("intra", rate=r) for r in RATES],
                train_policy=policy,
                seed=seed,
                text_view=view,
                overrides=overrides,
                output=output,
            )
            frame = execute(request)
            acc = frame[frame["metric"] == "acc2_has0"].set_index("rate")["value"]
            wall = frame.attrs.get("wall_time_s") or float(frame["wall_time_s"].iloc[0])
            rows.append({"method": method, "view": view, **{r: 100 * acc[r] for r in RATES}, "wall_s": wall})
            print(f"  {method:10s} {view:9s} " + "  ".join(f"r={r:g}: {100 * acc[r]:5.1f}" for r in RATES))
    return pd.DataFrame(rows)


def reencoding_cost(policy: str, seed: int, repeats: int = 3) -> dict[str, float | int | str]:
    """Seconds that re-encoding adds to one training epoch and to one test setting (median of ``repeats``)."""
    prepared = prepare(
        RunRequest(method="lf_dnn", settings=[Setting("intra", rate=0.5)], train_policy=policy, seed=seed)
    )
    dm = prepared.datamodule
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train = dm.dataset("train")
    batches = [
        {k: v.to(device) for k, v in train[np.arange(s, min(s + dm.batch_size, len(train)))].items()}
        for s in range(0, len(train), dm.batch_size)
    ]

    def epoch(reencode: bool) -> float:
        started = time.perf_counter()
        for batch in batches:
            out = dm.train_policy.apply(
                batch, seed=seed, epoch=0, split_size=len(train), keep_text_boundaries=dm.keep_text_boundaries
            )
            if reencode:
                dm.reencode(out)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    test = dm.dataset("test")
    test_batches = [
        {k: v.to(device) for k, v in test[np.arange(s, min(s + dm.eval_batch_size, len(test)))].items()}
        for s in range(0, len(test), dm.eval_batch_size)
    ]

    def test_setting() -> float:
        # What the loaders' cache holds for one setting: the whole test split re-encoded once.
        started = time.perf_counter()
        for batch in test_batches:
            dm.missing_view(batch, Setting("intra", rate=0.5), "test")
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    plain = float(np.median([epoch(False) for _ in range(repeats)]))
    with_text = float(np.median([epoch(True) for _ in range(repeats)]))
    return {
        "train_epoch_policy_s": plain,
        "train_epoch_reencoding_s": with_text - plain,
        "test_setting_s": float(np.median([test_setting() for _ in range(repeats)])),
        "train_samples": len(train),
        "test_samples": len(dm.dataset("test")),
        "device": str(device),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="all", help="comma list of methods (default: all)")
    parser.add_argument("--train-policy", default="lnln", help="the policy every method trains under")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--output", type=Path, default=Path("results/bench_text_view/runs"))
    parser.add_argument("--cost-only", action="store_true", help="only time re-encoding (no training)")
    parser.add_argument("--no-cost", action="store_true", help="skip timing re-encoding")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run")
    args = parser.parse_args(argv)
    quiet_lightning()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if not args.no_cost:
        cost = reencoding_cost(args.train_policy, args.seed)
        print(
            f"re-encoding on {cost['device']}: {cost['train_epoch_reencoding_s']:.2f} s per training epoch "
            f"({cost['train_samples']} samples; the policy alone {cost['train_epoch_policy_s']:.2f} s), "
            f"{cost['test_setting_s']:.2f} s per test setting ({cost['test_samples']} samples)"
        )
    if args.cost_only:
        return
    methods = names() if args.methods == "all" else [canonical_name(m) for m in args.methods.split(",")]
    table = leak_table(methods, args.train_policy, args.seed, args.output, list(args.overrides))
    wide = table.pivot(index="method", columns="view", values=list(RATES))
    print("\ntest Has0 Acc-2 (%), intra rate r, stored vs re-encoded text")
    print("| method | " + " | ".join(f"r={r:g} stored | r={r:g} re-encoded" for r in RATES) + " |")
    print("|---|" + "---|" * (2 * len(RATES)))
    for method in wide.index:
        cells = [f"{wide.loc[method, (r, v)]:.1f}" for r in RATES for v in VIEWS]
        print(f"| `{method}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
