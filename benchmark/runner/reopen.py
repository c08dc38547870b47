"""A finished run opened again from its directory: its own config, data and run key, to test it anew."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from msabench import store
from msabench.config.preflight import make_setting
from msabench.errors import MSABenchError, OutputError
from msabench.protocols import Setting
from msabench.runner.prepare import prepare
from msabench.runner.request import PreparedRun, RunRequest


def reopen(run_dir: Path) -> PreparedRun:
    """The finished run in ``run_dir`` rebuilt for testing; its request's settings are those its rows cover.

    The run's own ``config.yaml`` is given, leaf by leaf, as overrides of the method's config, so every value
    is the run's and every type the schema's; its data are read again. The rebuilt run key must equal the
    recorded one, so what is tested is the run that was trained.

    Args:
        run_dir: a run directory, as a sweep or ``msabench run`` published it.

    Raises:
        OutputError: ``run_dir`` is not a finished run with its checkpoint, or this msabench cannot rebuild it
            (other data, or a config the code has changed since).
    """
    run_dir = Path(run_dir)
    status = store.read_status(run_dir)
    missing = [
        name for name in ("config.yaml", "model.ckpt", store.RESULTS_FILE) if not (run_dir / name).is_file()
    ]
    if status.get("status") != "finished" or missing:
        lacking = f"it has no {', '.join(missing)}" if missing else f"its status is {status.get('status')}"
        raise OutputError(
            f"{run_dir} is not a finished run with its checkpoint ({lacking}): give a run directory"
        )
    rows = store.read_run(run_dir)
    first = rows.iloc[0]
    settings = list(_recorded_settings(rows).values())
    overrides = as_overrides(OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml")))
    rebuilt = ""
    # A matched run's key holds the setting it trained on, the first of its request; which of its rows that
    # was is not recorded, so each is tried (one-model runs match on the first).
    for trained in settings:
        request = RunRequest(
            method=str(first["method"]),
            settings=[trained, *(s for s in settings if s is not trained)],
            dataset=str(first["dataset"]),
            train_policy=str(first["train_policy"]),
            seed=int(first["seed"]),
            overrides=overrides,
            output=run_dir.parent,
        )
        try:
            prepared = prepare(request)
        except MSABenchError as err:
            raise OutputError(f"{run_dir} cannot be rebuilt by this msabench: {err}") from None
        if prepared.run_key == status.get("run_key"):
            prepared.run_dir = run_dir
            return prepared
        rebuilt = prepared.run_key
    raise OutputError(
        f"{run_dir} cannot be rebuilt by this msabench: its run key is {status.get('run_key')}, the "
        f"rebuild's {rebuilt} (other data, or a config the code has changed since; use the msabench that "
        f"made it, {first.get('msabench_version')} at commit {first.get('git_commit')})"
    )


def as_overrides(config: Any) -> list[str]:
    """A plain config as the ``key=value`` overrides that give it back (values as JSON, which YAML reads)."""
    return [f"{key}={json.dumps(value)}" for key, value in _leaves(config)]


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def _recorded_settings(rows: pd.DataFrame) -> dict[str, Setting]:
    """The test settings of a run's rows, by name, in the order they were recorded."""
    settings: dict[str, Setting] = {}
    for row in rows.drop_duplicates("setting").itertuples():
        rate = None if pd.isna(row.rate) else float(row.rate)
        condition = None if pd.isna(row.condition) else str(row.condition)
        settings[str(row.setting)] = make_setting(str(row.protocol), rate=rate, condition=condition)
    return settings
