"""Peak memory of a run on MOSEI-sized data: anonymous (RssAnon) and file-backed (RssFile), phase by phase.

Run ``python -m msabench.tools.bench_memory --out /tmp/msabench-mem`` (``--help`` for options). It writes a
MOSEI-shaped MMSA pickle (unaligned: text 50x768, audio 500x74, vision 500x35; 16326 / 1871 / 4659 samples at
``--scale 1``, about 8.5 GB of float32) without holding it in RAM: every array is filled in blocks into a
memory-mapped file and pickled from there (protocol 5, so the pickler writes the mapped bytes instead of a
copy). Then it runs the same short job twice, each in a fresh process: the first converts the pickle into the
memory-mapped cache, the second finds the cache. Each run has the phases ``setup`` (hash, convert or map,
checks), ``train`` (one epoch of ``--batches`` training batches and as many validation batches) and ``test``
(``--batches`` test batches), measured by a thread that reads ``/proc/self/status`` every 10 ms.

``--dataset`` picks how the file is read: ``mosei`` (the real-format path), or a synthetic variant with
``--data-path`` to a pickle that ``msabench data export`` wrote (its text encoder beside it): the synthetic
datamodule's path, memory-mapped (``data.options.mmap=true``). ``--generate`` measures the synthetic path
from the start instead: a fresh process generates the variant at MOSEI's sample counts (times ``--scale``;
``data.options.sizes``) into the cache (phase ``generate``), then both runs find it there. Remove ``--out``
when done.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

MOSEI_SIZES = {"train": 16326, "valid": 1871, "test": 4659}
SHAPES = {"text": (50, 768), "audio": (500, 74), "vision": (500, 35)}
GIB = 1 << 30


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakMeter:
    """Samples this process's RssAnon and RssFile in a thread; :meth:`phase` records the peaks of a block."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.phases: dict[str, dict[str, float]] = {}
        self._peak = {"RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            for field in self._peak:
                self._peak[field] = max(self._peak[field], _status_kib(field))
            time.sleep(self.interval)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Peak RssAnon/RssFile (GiB) and seconds of the enclosed block, stored under ``name``."""
        self._peak = {field: _status_kib(field) for field in self._peak}
        start = time.perf_counter()
        yield
        for field in self._peak:
            self._peak[field] = max(self._peak[field], _status_kib(field))
        self.phases[name] = {
            "anon_gib": self._peak["RssAnon"] / (1 << 20),
            "file_gib": self._peak["RssFile"] / (1 << 20),
            "seconds": time.perf_counter() - start,
        }

    def close(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


def _filled(path: Path, shape: tuple[int, ...], dtype: Any, fill: Any) -> np.ndarray:
    """A memory-mapped array (raw file) filled in blocks of 256 samples by ``fill(start, stop)``."""
    array = np.memmap(path, dtype=dtype, mode="w+", shape=shape)
    for start in range(0, shape[0], 256):
        stop = min(start + 256, shape[0])
        array[start:stop] = fill(start, stop)
    array.flush()
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


def write_mosei_like(out: Path, scale: float, seed: int = 0) -> Path:
    """Write a MOSEI-shaped unaligned MMSA pickle of random features, never holding an array in RAM.

    Labels lie in [-3, 3]; valid lengths are random; padding is 0; a few audio values are ``-inf``.
    """
    rng = np.random.default_rng(seed)
    raw = out / "arrays"
    raw.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    for split, full in MOSEI_SIZES.items():
        n = max(2, round(full * scale))
        lengths = {
            m: rng.integers(max(3, length // 10), length + 1, size=n) for m, (length, _) in SHAPES.items()
        }
        columns: dict[str, Any] = {}
        for m, (length, dim) in SHAPES.items():

            def fill(start: int, stop: int, m: str = m, valid: np.ndarray = lengths[m]) -> np.ndarray:
                length, dim = SHAPES[m]
                block = rng.standard_normal((stop - start, length, dim), dtype=np.float32)
                block *= (np.arange(length) < valid[start:stop, None])[..., None]
                if m == "audio":
                    block[:, 0, 0] = -np.inf
                return block

            columns[m] = np.asarray(_filled(raw / f"{split}.{m}.bin", (n, length, dim), np.float32, fill))
        ids = np.zeros((n, 3, SHAPES["text"][0]), dtype=np.int64)
        valid = np.arange(SHAPES["text"][0]) < lengths["text"][:, None]
        ids[:, 0] = np.where(valid, rng.integers(1000, 30000, size=valid.shape), 0)
        ids[:, 0, 0] = 101
        ids[np.arange(n), 0, lengths["text"] - 1] = 102
        ids[:, 1] = valid
        columns.update(
            text_bert=ids,
            audio_lengths=lengths["audio"],
            vision_lengths=lengths["vision"],
            regression_labels=np.round(rng.uniform(-3, 3, size=n), 1).astype(np.float32),
            id=np.array([f"v{i}$_$0" for i in range(n)], dtype=object),
        )
        data[split] = columns
    path = out / "mosei_like.pkl"
    with open(path, "wb") as handle:
        pickle.dump(
            data, handle, protocol=5
        )  # protocol 5 writes the mapped bytes, protocol 4 would copy them
    for part in raw.iterdir():
        part.unlink()
    raw.rmdir()
    return path


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    """The job of one process: setup, one short epoch, a few test batches; peaks per phase."""
    import lightning as L
    import torch

    from msabench.protocols import Setting
    from msabench.runner import RunRequest, build_final_module, prepare, quiet_lightning

    torch.set_num_threads(1)
    quiet_lightning()
    meter = PeakMeter()
    overrides = [f"data.batch_size={args.batch_size}", f"data.eval_batch_size={args.batch_size}"]
    if args.dataset != "mosei":
        overrides.append("data.options.mmap=true")
    if args.generate:
        overrides.append(f"data.options.sizes=[{','.join(map(str, mosei_counts(args.scale)))}]")
    request = RunRequest(
        method=args.method,
        dataset=args.dataset,
        data_path=None if args.data_path is None else str(args.data_path),
        train_policy="complete",
        settings=[Setting("inter", rate=0.3)],  # whole modalities: no text re-encoding in the measurement
        output=args.out / "runs",
        overrides=overrides,
    )
    with meter.phase("setup"):
        prepared = prepare(request)
    module = build_final_module(prepared)
    limits = {"limit_train_batches": args.batches, "limit_val_batches": args.batches}
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_test_batches=args.batches,
        **limits,
    )
    with meter.phase("train"):
        trainer.fit(module, datamodule=prepared.datamodule)
    module.set_test_settings(prepared.datamodule.test)
    with meter.phase("test"):
        trainer.test(module, datamodule=prepared.datamodule, verbose=False)
    meter.close()
    return {"phases": meter.phases, "vm_hwm_gib": _status_kib("VmHWM") / (1 << 20)}


def mosei_counts(scale: float) -> list[int]:
    """MOSEI's train / valid / test sample counts times ``scale`` (at least 2)."""
    return [max(2, round(full * scale)) for full in MOSEI_SIZES.values()]


def generate_synthetic(args: argparse.Namespace) -> dict[str, Any]:
    """The job of the generating process: the synthetic variant at MOSEI's counts, into the cache."""
    from msabench.datamodules.synthetic import cached_synthetic

    meter = PeakMeter()
    with meter.phase("generate"):
        path = cached_synthetic(args.dataset, 0, 1.0, sizes=mosei_counts(args.scale))
    meter.close()
    return {
        "phases": meter.phases,
        "bytes": path.stat().st_size,
        "vm_hwm_gib": _status_kib("VmHWM") / (1 << 20),
    }


def main() -> None:
    """Write the file (unless given), then run the job twice in fresh processes and print the peaks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder (file, cache, runs)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies MOSEI's sample counts")
    parser.add_argument("--dataset", default="mosei", help="mosei (real-format path) or synthetic-mosei")
    parser.add_argument("--data-path", type=Path, default=None, help="an existing pickle (skips writing one)")
    parser.add_argument("--method", default="lf_dnn")
    parser.add_argument("--batches", type=int, default=20, help="train, validation and test batches")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--generate", action="store_true", help="generate the synthetic --dataset at MOSEI's counts first"
    )
    parser.add_argument("--child", choices=("run", "generate"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["MSABENCH_CACHE"] = str(args.out / "cache")
    if args.child is not None:
        print(json.dumps(one_run(args) if args.child == "run" else generate_synthetic(args)))
        return
    if args.generate and (args.dataset == "mosei" or args.data_path is not None):
        sys.exit("error: --generate needs a synthetic --dataset and no --data-path")
    results: dict[str, Any] = {}
    argv = [
        sys.executable,
        "-m",
        "msabench.tools.bench_memory",
        "--out",
        str(args.out),
        "--dataset",
        args.dataset,
    ]
    argv += ["--method", args.method, "--batches", str(args.batches), "--batch-size", str(args.batch_size)]
    argv += ["--scale", str(args.scale)] + (["--generate"] if args.generate else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if args.generate:
        done = subprocess.run(
            [*argv, "--child", "generate"], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            sys.exit(f"error: generating failed:\n{done.stderr[-4000:]}")
        generated = json.loads(done.stdout.strip().splitlines()[-1])
        results["write"] = generated["phases"]["generate"]
        print(f"generated {args.dataset} ({generated['bytes'] / GIB:.2f} GiB)", flush=True)
    elif args.data_path is None:
        meter = PeakMeter()
        with meter.phase("write"):
            args.data_path = write_mosei_like(args.out, args.scale)
        meter.close()
        results["write"] = meter.phases["write"]
        print(f"wrote {args.data_path} ({args.data_path.stat().st_size / GIB:.2f} GiB)", flush=True)
    if args.data_path is not None:
        argv += ["--data-path", str(args.data_path)]
    for label in ("first run (converts)", "second run (cache exists)"):
        done = subprocess.run([*argv, "--child", "run"], env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"error: the {label} failed:\n{done.stderr[-4000:]}")
        results[label] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{'phase':<40} {'peak RssAnon GiB':>17} {'peak RssFile GiB':>17} {'seconds':>8}")
    if "write" in results:
        w = results["write"]
        what = "generate (fresh process)" if args.generate else "write the pickle"
        print(f"{what:<40} {w['anon_gib']:>17.2f} {w['file_gib']:>17.2f} {w['seconds']:>8.1f}")
    for label in ("first run (converts)", "second run (cache exists)"):
        for phase, p in results[label]["phases"].items():
            name = f"{label}: {phase}"
            print(f"{name:<40} {p['anon_gib']:>17.2f} {p['file_gib']:>17.2f} {p['seconds']:>8.1f}")
        print(f"{label}: VmHWM (peak RSS, anon + file) {results[label]['vm_hwm_gib']:.2f} GiB")


if __name__ == "__main__":
    main()
