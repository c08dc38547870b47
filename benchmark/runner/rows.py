"""Result rows: one per (run, setting, metric) with the run's provenance; a failed run leaves rows too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from msabench import config as config_lib
from msabench import store
from msabench.protocols import Setting
from msabench.runner.identity import git_commit, version

if TYPE_CHECKING:
    from msabench.runner.request import PreparedRun


def result_rows(
    prepared: PreparedRun,
    results: Mapping[str, Mapping[str, float]],
    info: Mapping[str, Any],
    error: str | None = None,
    settings: Sequence[Setting] | None = None,
) -> pd.DataFrame:
    """The tidy rows of a run (columns: ``results.RESULT_COLUMNS``).

    Args:
        prepared: the run.
        results: metric values per setting name; a setting without values gets one row with a NaN value.
        info: ``selection``, ``ckpt_epoch``, ``epochs``, ``max_epochs``, ``patience``, ``wall_time_s``,
            ``params`` and ``device`` (where it trained, e.g. ``cpu`` or ``cuda:0``) of the run.
        error: the error of a failed run (its status becomes ``failed``).
        settings: the settings to write; the request's by default.
    """
    cfg, dm = prepared.cfg, prepared.datamodule
    family = dm.dims.metric_family
    common = {
        "run_key": prepared.run_key,
        "status": "failed" if error else "finished",
        "error": error,
        "dataset": cfg.dataset,
        "data_id": dm.data_identity,
        "data_sha256": dm.sha256,
        "data_variant": dm.data_variant,
        "text_view": dm.text_view,
        "method": prepared.method_cls.method_name,
        "train_policy": prepared.policy_name,
        "seed": cfg.seed,
        "metric_family": family,
        "selection": info.get("selection"),
        "ckpt_epoch": info.get("ckpt_epoch"),
        "epochs": info.get("epochs"),
        "max_epochs": info.get("max_epochs"),
        "patience": info.get("patience"),
        "wall_time_s": info.get("wall_time_s"),
        "params": info.get("params"),
        "device": info.get("device"),
        "config_hash": config_lib.config_hash(cfg),
        "msabench_version": version(),
        "git_commit": git_commit(),
        "code_fingerprint": prepared.code.value,
    }
    rows = []
    for setting in settings or prepared.request.settings:
        where = setting_columns(setting)
        metrics = results.get(setting.name)
        if metrics is None:
            rows.append({**common, **where, "metric": None, "value": float("nan")})
            continue
        rows.extend({**common, **where, "metric": m, "value": v} for m, v in metrics.items())
    return pd.DataFrame(rows, columns=list(store.RESULT_COLUMNS))


def setting_columns(setting: Setting) -> dict[str, Any]:
    """The columns that name a setting (a condition is reported under the ``inter`` protocol)."""
    protocol = "inter" if setting.protocol == "condition" else setting.protocol
    return {
        "protocol": protocol,
        "rate": setting.rate if setting.rate is not None else float("nan"),
        "condition": setting.condition,
        "setting": setting.name,
        "mask_seed": setting.mask_seed,
    }
