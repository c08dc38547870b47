"""Time the protocols and training policies on a MOSI-unaligned-shaped batch.

Usage::

    python -m msabench.tools.bench_protocols                 # CPU, one thread, batch of 64
    python -m msabench.tools.bench_protocols --threads 4 --device cuda

Prints the mean wall time per call (after a warm-up) of ``apply_setting`` for each evaluation protocol and of
``apply`` for each training policy, and each one's share of one ``lf_dnn`` training step (forward, L1 loss,
backward and Adam update with MMSA's MOSI hyperparameters) on the same batch: the budget a protocol must stay
well inside (under 5 %).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from omegaconf import OmegaConf

from msabench.config import compose
from msabench.core.batch import Batch
from msabench.models.components.text import TextEncoder
from msabench.models.lf_dnn.config import ModelConfig
from msabench.models.lf_dnn.network import LFDNN
from msabench.protocols import Setting, apply_setting, build_policy

# MOSI unaligned (MMSA unaligned_50.pkl): text 50 x 768 (BERT features), audio 375 x 5, vision 500 x 20.
SHAPES: dict[str, tuple[int, int]] = {"text": (50, 768), "audio": (375, 5), "vision": (500, 20)}
MOSI_TRAIN_SIZE = 1284


def make_batch(batch_size: int, split_size: int, device: torch.device, seed: int = 0) -> Batch:
    """Build a complete batch with random valid lengths, BERT-style text ids and random split indices."""
    gen = torch.Generator().manual_seed(seed)
    batch: dict[str, torch.Tensor] = {}
    for modality, (length, dim) in SHAPES.items():
        lengths = torch.randint(2, length + 1, (batch_size,), generator=gen)
        valid = torch.arange(length)[None, :] < lengths[:, None]
        batch[f"{modality}_valid"] = valid
        batch[modality] = torch.randn(batch_size, length, dim, generator=gen) * valid[..., None]
    valid = batch["text_valid"]
    ids = torch.randint(101, 30000, valid.shape, generator=gen) * valid
    batch["text_ids"] = torch.stack([ids, valid.long(), torch.zeros_like(ids)], dim=1)
    batch["label"] = torch.rand(batch_size, generator=gen) * 6 - 3
    batch["index"] = torch.randperm(split_size, generator=gen)[:batch_size]
    return {k: v.to(device) for k, v in batch.items()}  # type: ignore[return-value]


def time_call(call: Callable[[int], object], reps: int, warmup: int, device: torch.device) -> list[float]:
    """Return the wall time in seconds of each of ``reps`` calls ``call(rep)``, after ``warmup`` calls."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for rep in range(warmup):
        call(rep)
    sync()
    times = []
    for rep in range(reps):
        start = time.perf_counter()
        call(rep)
        sync()
        times.append(time.perf_counter() - start)
    return times


def lf_dnn_step(batch: Batch, device: torch.device) -> Callable[[int], object]:
    """One lf_dnn training step with its MOSI config on ``batch``: the reference a protocol is priced in."""
    torch.manual_seed(0)
    cfg = compose("lf_dnn", "mosi", "mosi")
    model = ModelConfig(**OmegaConf.to_container(cfg.model))  # type: ignore[arg-type]
    text = TextEncoder("features", SHAPES["text"][1])
    network = LFDNN(model, text, SHAPES["audio"][1], SHAPES["vision"][1], output_dim=1).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)

    def step(_: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        pred = network(
            batch["text"],
            batch["audio"],
            batch["audio_valid"],
            batch["vision"],
            batch["vision_valid"],
            batch["text_valid"],
        ).squeeze(-1)
        torch.nn.functional.l1_loss(pred, batch["label"]).backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print one row per protocol or policy."""
    parser = argparse.ArgumentParser(
        prog="python -m msabench.tools.bench_protocols", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    split_size = MOSI_TRAIN_SIZE
    batch = make_batch(args.batch_size, split_size, device)

    def evaluation(setting: Setting) -> Callable[[int], object]:
        return lambda _: apply_setting(
            batch, setting, split="test", split_size=split_size, keep_text_boundaries=True
        )

    def training(name: str, new_epoch_each_call: bool = False, **params: object) -> Callable[[int], object]:
        policy = build_policy(name, matched=Setting("intra", 0.5), **params)
        return lambda rep: policy.apply(
            batch,
            seed=1111,
            epoch=rep if new_epoch_each_call else 0,
            split_size=split_size,
            keep_text_boundaries=True,
        )

    rows: list[tuple[str, Callable[[int], object]]] = [
        ("apply_setting complete", evaluation(Setting("complete"))),
        ("apply_setting intra@0.5", evaluation(Setting("intra", 0.5))),
        ("apply_setting inter@0.3", evaluation(Setting("inter", 0.3))),
        ("apply_setting condition:ta", evaluation(Setting("condition", condition="ta"))),
        ("apply_setting stochastic", evaluation(Setting("stochastic"))),
        ("policy complete", training("complete")),
        ("policy matched (intra@0.5)", training("matched")),
        ("policy lnln", training("lnln")),
        ("policy lnln, new epoch every call", training("lnln", new_epoch_each_call=True)),
        ("policy conditions", training("conditions")),
        ("policy stochastic", training("stochastic")),
    ]
    print(
        f"batch {args.batch_size} x (text 50x768, audio 375x5, vision 500x20), text_ids, split {split_size}; "
        f"device {device}, {torch.get_num_threads()} thread(s), torch {torch.__version__}; "
        f"{args.reps} reps after {args.warmup} warm-up"
    )
    step_ms = statistics.fmean(
        t * 1e3 for t in time_call(lf_dnn_step(batch, device), args.reps, args.warmup, device)
    )
    print(f"{'call':<38}{'mean ms':>10}{'std ms':>10}{'median ms':>11}{'us/sample':>11}{'% lf_dnn step':>15}")
    print(f"{'lf_dnn training step (reference)':<38}{step_ms:>10.3f}{'':>43}{100.0:>14.1f}%")
    for name, call in rows:
        times = [t * 1e3 for t in time_call(call, args.reps, args.warmup, device)]
        mean = statistics.fmean(times)
        print(
            f"{name:<38}{mean:>10.3f}{statistics.pstdev(times):>10.3f}{statistics.median(times):>11.3f}"
            f"{mean * 1e3 / args.batch_size:>11.1f}{100 * mean / step_ms:>14.1f}%"
        )


if __name__ == "__main__":
    main()
