"""The Python API: ``msabench.run(...)``, the command line's ``msabench run`` as a function."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from msabench.models import canonical_name
from msabench.runner.execute import execute
from msabench.runner.request import RunRequest, make_setting


def run(
    method: str,
    protocol: str = "intra",
    rate: float | None = None,
    condition: str | None = None,
    *,
    dataset: str = "synthetic",
    data_path: str | None = None,
    data_root: str | None = None,
    seed: int | None = None,
    train_policy: str = "paper",
    bert_path: str | None = None,
    text_view: str | None = None,
    output: str | Path = "results/runs",
    overrides: Sequence[str] | Mapping[str, Any] = (),
    rerun: bool = False,
    **dotted: Any,
) -> pd.DataFrame:
    """Python API: train, select on validation, test one setting; returns the tidy results.

    Example::

        import msabench
        df = msabench.run(method="lf_dnn", protocol="intra", rate=0.3, trainer__max_epochs=2)

    Args:
        method: method name (``lf_dnn``, ``IF-MMIN``, ...).
        protocol: ``intra`` or ``inter``.
        rate: the missing rate of the protocol.
        condition: with ``inter``: the available modalities instead of a rate (``"ta"``).
        dataset: dataset name (``synthetic`` by default).
        data_path: a data file.
        data_root: a directory with the datasets in MMSA's layout (default ``$MSABENCH_DATA``).
        seed: training seed (the config's by default).
        train_policy: a policy name or ``paper``.
        bert_path: the local BERT the stored text was made with (re-encodes text where tokens are dropped).
        text_view: ``auto``, ``reencoded`` or ``stored`` (see :mod:`msabench.datamodules.text_view`).
        output: the results root.
        overrides: ``key=value`` strings or a mapping of dotted keys.
        rerun: train again even if a finished run with the same key exists.
        **dotted: further overrides with ``__`` for dots (``trainer__max_epochs=2``).
    """
    items = [f"{k}={v}" for k, v in overrides.items()] if isinstance(overrides, Mapping) else list(overrides)
    items += [f"{k.replace('__', '.')}={v}" for k, v in dotted.items()]
    setting = make_setting(protocol, rate, condition)
    request = RunRequest(
        method=canonical_name(method),
        settings=[setting],
        dataset=dataset,
        train_policy=train_policy,
        seed=seed,
        data_path=data_path,
        data_root=data_root,
        bert_path=bert_path,
        text_view=text_view,
        overrides=items,
        output=Path(output),
        rerun=rerun,
    )
    return execute(request)
