"""The Python API: ``msabench.run(...)``, the command line's ``msabench run`` as a function."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from msabench.config import EPOCH_CAP_KEY, preflight
from msabench.core.vocabulary import TEXT_VIEW_CHOICES
from msabench.errors import ConfigError
from msabench.runner.execute import execute
from msabench.runner.request import RunRequest


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
    accept_stale: bool = False,
    max_epochs: int | None = None,
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
        accept_stale: reuse a finished run with the same key although other code made it (``--accept-stale``;
            without it such a run is trained again, the old one kept, renamed).
        max_epochs: cap every training stage at this many epochs (``--max-epochs``), for a quick try.
        **dotted: further overrides with ``__`` for dots (``trainer__max_epochs=2``).

    Raises:
        MSABenchError: an argument of the wrong type or value, in one line naming it (checked, like the
            command line's flags, before anything is read or written).
    """
    items = _override_items(overrides)
    items += [f"{k.replace('__', '.')}={v}" for k, v in dotted.items()]
    if max_epochs is not None:
        items.append(f"{EPOCH_CAP_KEY}={_integer(max_epochs, 'max_epochs')}")
    for name, value in (("data_path", data_path), ("data_root", data_root), ("bert_path", bert_path)):
        preflight.path_argument(value, name)
    if seed is not None:
        _integer(seed, "seed")
    if text_view is not None and text_view not in TEXT_VIEW_CHOICES:
        raise ConfigError(f"text_view must be one of {', '.join(TEXT_VIEW_CHOICES)}, not {text_view!r}")
    for name, flag in (("rerun", rerun), ("accept_stale", accept_stale)):
        if not isinstance(flag, bool):
            raise ConfigError(f"{name} must be True or False, not {flag!r}")
    flags = preflight.config_flags(seed, _text(data_path), _text(data_root), _text(bert_path), text_view)
    method, setting, root = preflight.check_run(
        method=method,
        protocol=protocol,
        rate=rate,
        condition=condition,
        dataset=dataset,
        train_policy=train_policy,
        data_path=data_path,
        data_root=data_root,
        output=preflight.path_argument(output, "output", optional=False),
        flags=flags,
        overrides=items,
    )
    request = RunRequest(
        method=method,
        settings=[setting],
        dataset=dataset,
        train_policy=train_policy,
        seed=seed,
        data_path=data_path,
        data_root=data_root,
        bert_path=_text(bert_path),
        text_view=text_view,
        overrides=items,
        output=root,
        rerun=rerun,
        accept_stale=accept_stale,
    )
    return execute(request)


def _override_items(overrides: object) -> list[str]:
    """``overrides`` as ``key=value`` strings; one string (not a list of them) is refused, not split."""
    if isinstance(overrides, Mapping):
        return [f"{k}={v}" for k, v in overrides.items()]
    if isinstance(overrides, str) or not isinstance(overrides, Sequence):
        raise ConfigError(
            f"overrides must be a list of key=value strings or a mapping, not {overrides!r} "
            "(e.g. overrides=['trainer.max_epochs=2'] or {'trainer.max_epochs': 2})"
        )
    for item in overrides:
        if not isinstance(item, str):
            raise ConfigError(f"overrides must hold key=value strings, not {item!r}")
    return list(overrides)


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, not {value!r}")
    return value


def _text(value: str | Path | None) -> str | None:
    return None if value is None else str(value)
