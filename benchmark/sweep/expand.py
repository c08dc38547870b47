"""Expansion of a grid spec into runs: one :class:`Job` per checkpoint to train.

A grid trains **once per (dataset, method, training policy, seed)** and evaluates that checkpoint on every
test setting of the grid; only the ``matched`` policy trains one model per setting, as its papers do (P2: one
model per rate). A job's run key is the runner's (a hash of what determines the run): nothing about where or
with what resources it runs enters it, so a sweep started on a cluster can be finished on a laptop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msabench import config as config_lib
from msabench.errors import UnknownNameError
from msabench.protocols.settings import ALL_CONDITIONS, Setting
from msabench.sweep.spec import SweepSpec


@dataclass(frozen=True)
class Job:
    """One run of a sweep: one checkpoint, evaluated on ``settings``."""

    dataset: str
    method: str
    train_policy: str
    seed: int
    settings: tuple[Setting, ...]
    overrides: tuple[str, ...] = ()
    extra_blocks: tuple[str, ...] = ()
    data_root: str | None = None
    accept_stale: bool = False  # reuse finished runs made by other code (not part of the sweep's id)

    @property
    def timing_group(self) -> str:
        """What predicts this job's wall time: its dataset, method and policy (matched rates cost alike)."""
        return f"{self.dataset} {self.method} {self.train_policy}"

    @property
    def per_setting(self) -> bool:
        """Whether the job's policy trains one model per test setting (or per group removing nothing)."""
        from msabench.protocols.policies import policy_class

        return policy_class(self.train_policy).per_setting

    @property
    def label(self) -> str:
        """Readable name: dataset, method, policy (with its setting when matched) and seed."""
        matched = f" {self.settings[0].name}" if self.per_setting else ""
        return f"{self.dataset} {self.method} {self.train_policy}{matched} s{self.seed}"

    def request(self, output: Path, wandb: bool | None = None, sweep_id: str | None = None) -> Any:
        """The runner's request for this job."""
        from msabench.runner import RunRequest  # lazy: the runner loads torch and Lightning

        return RunRequest(
            method=self.method,
            settings=list(self.settings),
            dataset=self.dataset,
            train_policy=self.train_policy,
            seed=self.seed,
            data_root=self.data_root,
            overrides=list(self.overrides),
            output=Path(output),
            extra_blocks=tuple(self.extra_blocks),
            wandb=wandb,
            sweep_id=sweep_id,
            accept_stale=self.accept_stale,
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (the sweep's manifest and id)."""
        return {
            "dataset": self.dataset,
            "method": self.method,
            "train_policy": self.train_policy,
            "seed": self.seed,
            "settings": [s.name for s in self.settings],
            "overrides": list(self.overrides),
            "extra_blocks": list(self.extra_blocks),
        }


def expand(spec: SweepSpec, extra_blocks: Sequence[str] = (), data_root: str | None = None) -> list[Job]:
    """The runs of a sweep, ordered seed by seed (a partial sweep holds whole seeds first).

    ``paper`` resolves to each method's own policy (from its composed config, so dataset blocks and overrides
    count); a policy that trains per setting (``matched``) gives one job per setting (one for all the settings
    that remove nothing, which train the same model), any other policy one job with every setting. Jobs with
    the same (dataset, method, policy, seed) from several grids are merged: each checkpoint is trained once.
    The spec's ``blocks`` (the `quick` preset's ``quick`` budgets) come first in each job's ``extra_blocks``,
    then ``extra_blocks`` (``smoke`` in tests), so they enter the composed config and the run key.
    Unknown methods, datasets and override keys fail here, before anything runs.
    """
    # Lazy: the data, the methods and the runner load torch and Lightning; parsing a sweep file does not.
    from msabench.datamodules import DATASETS
    from msabench.models import canonical_name, names
    from msabench.models import get as get_method
    from msabench.protocols.policies import policy_class
    from msabench.runner import dataset_family, resolve_policy_name

    for grid in spec.grids:
        for dataset in grid.datasets:
            if dataset not in DATASETS:
                raise UnknownNameError("dataset", dataset, DATASETS)
    extra_blocks = tuple(dict.fromkeys((*spec.blocks, *extra_blocks)))
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    seed_rank: dict[int, int] = {}
    for grid in spec.grids:
        methods = names() if "all" in grid.methods else [canonical_name(m) for m in grid.methods]
        settings = grid.settings()
        for dataset in grid.datasets:
            for method in methods:
                method_cls = get_method(method)
                cfg = config_lib.compose(
                    method_cls.method_name,
                    dataset,
                    dataset_family(dataset),
                    {},
                    list(spec.overrides),
                    extra_blocks,
                )
                for policy in grid.train_policies:
                    resolved = resolve_policy_name(policy, method_cls, cfg)
                    per_setting = policy_class(resolved).per_setting
                    for seed in grid.seeds or (cfg.seed,):
                        seed_rank.setdefault(seed, len(seed_rank))
                        groups = _per_setting_groups(settings) if per_setting else [settings]
                        for group in groups:
                            key = (
                                dataset,
                                method_cls.method_name,
                                resolved,
                                seed,
                                group[0].name if per_setting else None,
                            )
                            entry = merged.setdefault(key, {"settings": {}})
                            entry["settings"].update({s.name: s for s in group})
    jobs = [
        Job(
            dataset=k[0],
            method=k[1],
            train_policy=k[2],
            seed=k[3],
            settings=tuple(sorted(v["settings"].values(), key=_setting_order)),
            overrides=tuple(spec.overrides),
            extra_blocks=tuple(extra_blocks),
            data_root=data_root,
        )
        for k, v in merged.items()
    ]
    return sorted(
        jobs,
        key=lambda j: (seed_rank[j.seed], j.dataset, j.method, j.train_policy, _setting_order(j.settings[0])),
    )


def _setting_order(setting: Setting) -> tuple[int, float, int]:
    rank = {"intra": 0, "inter": 1, "condition": 2}.get(setting.protocol, 3)
    condition = ALL_CONDITIONS.index(setting.condition) if setting.condition in ALL_CONDITIONS else 99
    return rank, setting.rate if setting.rate is not None else -1.0, condition


def sweep_id(name: str, jobs: Sequence[Job]) -> str:
    """A stable id of a sweep (its name and a hash of its runs): the W&B group and the state folder."""
    digest = hashlib.sha256(json.dumps([j.describe() for j in jobs], sort_keys=True).encode()).hexdigest()
    return f"{name}-{digest[:8]}"


def _per_setting_groups(settings: Sequence[Setting]) -> list[list[Setting]]:
    """One group of settings per model that a per-setting policy trains.

    Each setting trains its own model, except those that remove nothing (intra r = 0, inter MR = 0, condition
    ``tav``): they train the same model, so they share one run, named after the first of them in the grid's
    order (the setting it trains and validates on).
    """
    complete = sorted((s for s in settings if s.removes_nothing), key=_setting_order)
    return [[s] for s in settings if not s.removes_nothing] + ([complete] if complete else [])
