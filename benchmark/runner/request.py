"""What a user asks of one run, and the config it composes to.

A run is (dataset, method, training policy, seed, config) -> one checkpoint, selected on validation only and
evaluated on every requested test setting without retraining.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from msabench import config as config_lib
from msabench.config.preflight import config_flags
from msabench.core.vocabulary import POLICIES, POLICY_CHOICES
from msabench.datamodules import get_dataset
from msabench.errors import UnknownNameError
from msabench.models import get as get_method
from msabench.models.base import MSAMethod
from msabench.protocols import Setting
from msabench.protocols.policies import policy_class
from msabench.runner.identity import CodeFingerprint


@dataclass
class RunRequest:
    """Everything a user asks of one run.

    Attributes:
        method: method name (any case, ``-`` or ``_``).
        settings: the test settings to evaluate the selected checkpoint on.
        dataset: dataset name; ``synthetic`` by default.
        train_policy: a policy name or ``paper`` (the method's own).
        seed: training seed; None takes the config's.
        data_path: an MMSA pickle (or IEMOCAP feature root) to read.
        data_root: a directory holding the datasets in MMSA's layout.
        bert_path: the local BERT the stored text was made with.
        text_view: ``auto``, ``reencoded`` or ``stored``; None takes the config's.
        overrides: ``key=value`` config overrides.
        output: the results root; each run gets a directory under it.
        extra_blocks: further method-config blocks to merge (``smoke`` in tests).
        rerun: train again even when a finished run with the same key exists (the old one is kept, renamed).
        accept_stale: reuse a finished run with the same key although other code made it (its recorded code
            fingerprint differs from today's, or it records none); without it such a run is trained again.
        profiler: a Lightning profiler given to every trainer of the run (``msabench.tools.bench_profile``);
            it does not change what is trained and is not part of the run key.
    """

    method: str
    settings: Sequence[Setting]
    dataset: str = "synthetic"
    train_policy: str = "paper"
    seed: int | None = None
    data_path: str | None = None
    data_root: str | None = None
    bert_path: str | None = None
    text_view: str | None = None
    overrides: Sequence[str] = ()
    output: Path = Path("results/runs")
    extra_blocks: Sequence[str] = ()
    rerun: bool = False
    accept_stale: bool = False
    wandb: bool | None = None
    sweep_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    profiler: Any = None


@dataclass
class PreparedRun:
    """A request resolved against the method, the data and the config: what determines the run.

    ``code`` is the fingerprint of the code that determines it
    (:func:`~msabench.runner.identity.code_fingerprint`): recorded with the run, not part of its key.
    """

    request: RunRequest
    method_cls: type[MSAMethod]
    cfg: DictConfig
    datamodule: Any
    policy_name: str
    run_key: str
    run_dir: Path
    code: CodeFingerprint
    data_warnings: list[str] = field(default_factory=list)

    @property
    def per_setting(self) -> bool:
        """Whether the run's policy trains one model per test setting (the run names its setting)."""
        return policy_class(self.policy_name).per_setting


def dataset_family(dataset: str) -> str:
    """Metric family of a dataset name: ``mosi`` (MOSI, MOSEI), ``sims`` or ``iemocap``, as registered."""
    return get_dataset(dataset).metric_family


def resolve_policy_name(name: str, method_cls: type[MSAMethod], cfg: DictConfig) -> str:
    """``paper`` -> the method's own policy; any other name is checked."""
    name = name.strip().lower()
    if name == "paper":
        name = cfg.method.paper_policy
    if name not in POLICIES:
        raise UnknownNameError("training policy", name, POLICY_CHOICES)
    return name


def validation_settings(policy: str, test: Sequence[Setting], cfg: DictConfig) -> list[Setting]:
    """The fixed-mask validation settings of the training policy ``policy`` (each policy knows its own).

    See :meth:`msabench.protocols.TrainingPolicy.validation_settings`; the mask seed and the rate of
    rate-validated policies come from ``evaluation``.
    """
    return policy_class(policy).validation_settings(
        test, mask_seed=cfg.evaluation.mask_seed, validation_rate=cfg.evaluation.validation_rate
    )


def compose(request: RunRequest) -> tuple[type[MSAMethod], str, DictConfig]:
    """The method class, the canonical dataset name and the resolved config of ``request``."""
    method_cls = get_method(request.method)
    dataset = request.dataset.strip().lower()
    family = dataset_family(dataset)
    flags = config_flags(
        request.seed,
        request.data_path,
        request.data_root,
        request.bert_path,
        request.text_view,
        request.wandb,
    )
    cfg = config_lib.compose(
        method_cls.method_name,
        dataset,
        family,
        flags,
        request.overrides,
        request.extra_blocks,
        schemas=method_cls.schemas,
    )
    return method_cls, dataset, cfg
