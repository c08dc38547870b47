"""MSAMethod: the one LightningModule every method subclasses.

The base owns everything that must be identical across methods for a comparison to be fair: the step
skeleton, metrics (computed once over the whole split, never averaged per batch), logging, the validation
monitor, optimizers and schedules from config, gradient clipping per sub-network, and evaluation over many
test settings in one pass (one test dataloader per setting). A method supplies a network, its losses and its
config::

    @register("my_method")
    class MyMethod(MSAMethod):
        paper_policy = "lnln"

        def build_network(self, model_cfg, dims):
            return MyNetwork(text_dim=dims.text_dim, ..., **model_cfg)

        def forward(self, batch):                      # the missing view only: what test uses
            return self.network(batch)

        def training_loss(self, batch):                # may use the complete view (batch["text_full"], ...)
            prediction = self(batch)
            return {"loss": self.task_loss(prediction, batch["label"])}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar, cast

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanMetric

from msabench.core.batch import Batch, has_complete_view, missing_view
from msabench.datamodules.base import DataDims
from msabench.errors import ConfigError
from msabench.metrics import MSAMetric
from msabench.models.components.text import TextEncoder, TextEncoderName
from msabench.models.schema import BlockSchemas, TextEncoderConfig
from msabench.protocols.settings import Setting

REGRESSION_LOSSES: tuple[str, ...] = ("l1", "mse", "smooth_l1")

LossTerms = Mapping[str, "tuple[float, Tensor | LossTerms]"]
"""Named loss terms, each ``(weight, term)``; a term may be a group of terms (its name is not logged)."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run fails and its row records this error."""


@dataclass(frozen=True)
class Stage:
    """One stage of a method's training, run by the runner as an ordinary ``Trainer.fit``.

    Attributes:
        name: stage name; its config block ``stages.<name>`` is merged over the run's config for this stage.
        module: the MSAMethod subclass trained in this stage; it receives the previous stage's trained module.
        policy: training policy of this stage (``complete`` for full-modality pretraining); None = the run's.
        validation: ``auto`` (derived from the training policy) or ``complete``.
    """

    name: str
    module: type[MSAMethod]
    policy: str | None = None
    validation: Literal["auto", "complete"] = "auto"


ModuleT = TypeVar("ModuleT", bound=nn.Module)


class MSAMethod(L.LightningModule):
    """Shared logic of every method.

    Subclasses implement ``build_network``, ``forward`` and ``training_loss``.
    """

    method_name: ClassVar[str] = ""
    network: nn.Module  # the method's network; each method names its own class here, for the type checker
    paper_policy: ClassVar[str] = "matched"
    validation_uses_complete_view: ClassVar[bool] = False
    """True when ``validation_loss`` needs the complete view (MITR-DNet's selection loss has distillation
    terms). ``forward`` still only ever sees the missing view."""
    schemas: ClassVar[BlockSchemas] = BlockSchemas()
    """The dataclasses of the method's ``config.py`` that type its ``model``, ``loss`` and ``optim`` blocks
    (fields without defaults: the values live in its ``config.yaml``). The composed blocks are checked against
    them before the run starts: an unknown key or a value of the wrong type is one line, and ``cfg.model``,
    ``cfg.loss`` and ``cfg.optim`` hold typed values."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "config_schema" in cls.__dict__:
            raise TypeError(
                f"{cls.__qualname__} sets config_schema, which msabench no longer reads: declare `schemas = "
                "BlockSchemas(model=ModelConfig, loss=LossConfig)` instead (msabench.models.schema)"
            )

    def __init__(self, cfg: DictConfig, dims: DataDims, previous: MSAMethod | None = None) -> None:
        """Build the method.

        Args:
            cfg: the resolved run config (``cfg.model`` holds the network's hyperparameters).
            dims: the data's dimensions (``msabench.datamodules.DataDims``), read from the data.
            previous: the trained module of the previous stage, for methods with several stages.
        """
        super().__init__()
        if cfg.loss.regression not in REGRESSION_LOSSES:
            raise ConfigError(
                f"unknown loss.regression '{cfg.loss.regression}': use {', '.join(REGRESSION_LOSSES)}"
            )
        self.cfg = cfg
        self.dims = dims
        self.network = self.build_network(self.model_config(cfg), dims)
        self.val_metric = MSAMetric(dims.metric_family, dims.num_classes)
        self.test_metrics = nn.ModuleList()
        self.test_settings: list[Setting] = []
        self.test_results: dict[str, dict[str, float]] = {}
        self._frozen: list[nn.Module] = []
        self._nonfinite: tuple[Tensor, Tensor] | None = None
        self._nonfinite_names: list[str] = []
        # The mean over samples, pooled over every validation dataloader, in float64 as the metrics; a NaN
        # loss stays NaN (early stopping does not check finiteness, the selection sees it).
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.val_loss.set_dtype(torch.float64)
        if previous is not None:
            self.init_from_previous(previous)

    def model_config(self, cfg: DictConfig) -> Any:
        """The ``model`` block as the method's ``ModelConfig`` object (its checks run); as it is without one.

        Networks take this object whole: each hyperparameter is spelled in the YAML and the dataclass only.
        The ``loss`` and ``optim`` blocks are checked the same way (their dataclasses' ``__post_init__``).
        """
        typed: dict[str, Any] = {"model": cfg.model}
        for name, schema in self.schemas.items():
            block = OmegaConf.to_container(cfg[name], resolve=True)
            typed[name] = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), block))
        return typed["model"]

    # ------------------------------------------------------------------ what a method supplies
    def build_network(self, model_cfg: Any, dims: DataDims) -> nn.Module:
        """The method's network (a pure ``nn.Module``), built from its ``model`` block and the data's dims.

        Args:
            model_cfg: the method's ``ModelConfig`` object (:meth:`model_config`), a network takes it whole.
            dims: the data's dimensions.
        """
        raise NotImplementedError

    def forward(self, batch: Batch) -> Tensor:
        """Predict from the missing view: (B,) for regression, (B, C) logits for classification."""
        raise NotImplementedError

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Training loss: a dict with the total under ``loss`` and named parts (each logged)."""
        raise NotImplementedError

    def validation_loss(self, batch: Batch, prediction: Tensor) -> dict[str, Tensor]:
        """Validation loss (what ``selection.metric: loss`` minimises): the task loss by default."""
        return {"loss": self.task_loss(prediction, batch["label"])}

    def init_from_previous(self, previous: MSAMethod) -> None:
        """Take what this stage needs from the previous stage's trained module (encoders, a teacher)."""
        raise NotImplementedError(f"{type(self).__name__} does not take a previous stage")

    @classmethod
    def stages(cls, cfg: DictConfig) -> list[Stage]:
        """The training stages, in order; one stage by default."""
        return [Stage("main", cls)]

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups; override for per-group learning rates (keys as in ``torch.optim``)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def selection_start_epoch(self) -> int:
        """The first epoch (0-based) whose validation may select the checkpoint or count for early stopping.

        0 by default. A stage whose first epochs train another objective than its own (a loss weight still
        ramping in) returns its first epoch at the full objective, so that the selected weights were trained
        with it.
        """
        return 0

    # ------------------------------------------------------------------ helpers for methods
    @property
    def is_classification(self) -> bool:
        """Whether the task is classification (IEMOCAP) rather than regression."""
        return self.dims.task == "classification"

    @property
    def output_dim(self) -> int:
        """Width of the prediction head: 1 for regression, the number of classes for classification."""
        if not self.is_classification:
            return 1
        assert self.dims.num_classes is not None  # DataDims of a classification task carries it
        return self.dims.num_classes

    def text_encoder(self, model_cfg: TextEncoderConfig | DictConfig, dims: DataDims) -> TextEncoder:
        """The text encoder every method has, from the ``model`` keys (``msabench.models.schema``)."""
        encoder = cast("TextEncoderName", model_cfg.text_encoder)  # checked by TextEncoder
        return TextEncoder(encoder, dims.text_dim, model_cfg.bert_path, model_cfg.bert_finetune)

    def shaped(self, output: Tensor) -> Tensor:
        """A head's (B, out) output as a prediction: (B,) for regression, (B, C) logits for classification."""
        return output if self.is_classification else output.squeeze(-1)

    def weighted_total(self, terms: LossTerms) -> dict[str, Tensor]:
        """The weighted sum of named loss terms under ``loss``, and every term under its own name (logged).

        Terms are summed in the order given, left to right; a group ``(w, {...})`` adds ``w`` times its own
        weighted sum, so ``a + w * (b + c)`` keeps the grouping of the method's formula.

        Args:
            terms: name -> ``(weight, term)``, a term being a scalar tensor or a group of terms.
        """
        parts: dict[str, Tensor] = {}

        def total(group: LossTerms) -> Tensor:
            result: Tensor | None = None
            for name, (weight, term) in group.items():
                if isinstance(term, Mapping):
                    value = total(term)
                else:
                    parts[name] = value = term
                weighted = value if weight == 1 else float(weight) * value
                result = weighted if result is None else result + weighted
            if result is None:
                raise ValueError("weighted_total needs at least one term")
            return result

        loss = total(terms)
        return {"loss": loss, **parts}

    def task_loss(self, prediction: Tensor, label: Tensor) -> Tensor:
        """Cross-entropy for classification; the configured regression loss otherwise.

        The regression loss is ``loss.regression``.
        """
        if self.is_classification:
            return F.cross_entropy(prediction, label.long())
        prediction = prediction.reshape(label.shape)
        match self.cfg.loss.regression:
            case "l1":
                return F.l1_loss(prediction, label)
            case "mse":
                return F.mse_loss(prediction, label)
            case "smooth_l1":
                return F.smooth_l1_loss(prediction, label)
            case other:
                raise AssertionError(f"loss.regression '{other}' passed the check in __init__")

    def frozen(self, module: ModuleT) -> ModuleT:
        """Freeze ``module`` (a teacher): no gradients, and kept in eval mode even when the method trains."""
        module.requires_grad_(False)
        module.eval()
        self._frozen.append(module)
        return module

    def train(self, mode: bool = True) -> MSAMethod:
        """Switch modes, keeping frozen modules in eval mode (dropout off, BatchNorm statistics fixed)."""
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    # ------------------------------------------------------------------ evaluation settings
    def set_test_settings(self, settings: Sequence[Setting]) -> None:
        """One metric collection per test setting (one test dataloader each, in the same order)."""
        self.test_settings = list(settings)
        device = self.device
        self.test_metrics = nn.ModuleList(
            MSAMetric(self.dims.metric_family, self.dims.num_classes).to(device) for _ in settings
        )
        self.test_results = {}

    # ------------------------------------------------------------------ the step skeleton
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        parts = self.training_loss(batch)
        loss = parts["loss"]
        self._watch_finite(parts)
        size = batch["label"].shape[0]
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in parts.items()},
            on_step=False,
            on_epoch=True,
            batch_size=size,
        )
        return loss

    def _watch_finite(self, parts: Mapping[str, Tensor]) -> None:
        """Remember the first step of the epoch whose loss is not finite, on the device.

        Testing every step would make the host wait for the device each step; the flag is read once per
        epoch (:meth:`check_finite_loss`), and the run fails with the parts of that first step.
        """
        values = torch.stack([v.detach().float().reshape(()) for v in parts.values()])
        bad = ~torch.isfinite(values[list(parts).index("loss")])
        if self._nonfinite is None:
            self._nonfinite = (bad, values)
            self._nonfinite_names = list(parts)
            return
        seen, first = self._nonfinite
        self._nonfinite = (seen | bad, torch.where(seen, first, values))

    def check_finite_loss(self) -> None:
        """Raise :class:`NonFiniteLossError` when a training step of this epoch had a NaN or infinite loss."""
        if self._nonfinite is None:
            return
        seen, first = self._nonfinite
        self._nonfinite = None
        if bool(seen):  # one synchronisation per epoch
            parts = zip(self._nonfinite_names, first.tolist(), strict=True)
            values = ", ".join(f"{k}={v:.4g}" for k, v in parts)
            raise NonFiniteLossError(f"non-finite training loss at epoch {self.current_epoch}: {values}")

    def on_validation_start(self) -> None:
        # Before validation reads weights a non-finite loss may have reached.
        self.check_finite_loss()

    def on_train_epoch_end(self) -> None:
        self.check_finite_loss()

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        prediction = self(missing_view(batch))
        parts = self.validation_loss(batch, prediction)
        # One value per sample, not a weight: torchmetrics ignores weights under nan_strategy="disable".
        self.val_loss.update(parts["loss"].detach().expand(batch["label"].shape[0]))
        self.val_metric.update(prediction.detach(), batch["label"])

    def setup(self, stage: str) -> None:
        if self.trainer.strategy.root_device.type == "mps":  # MPS has no float64
            self.val_loss.set_dtype(torch.float32)

    def on_validation_epoch_end(self) -> None:
        # Pooled over every validation dataloader (MMIN's 6N condition-replicated set is one pool).
        values = {f"val/{k}": v for k, v in self.val_metric.compute().items()}
        values["val/loss"] = self.val_loss.compute()
        self.val_metric.reset()
        self.val_loss.reset()
        self.log_dict({k: v.float() for k, v in values.items()}, prog_bar=False)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if has_complete_view(batch):
            raise RuntimeError("a test batch carries the complete view; the datamodule must strip it")
        prediction = self(batch)
        cast(MSAMetric, self.test_metrics[dataloader_idx]).update(prediction.detach(), batch["label"])

    def on_test_epoch_end(self) -> None:
        for setting, module in zip(self.test_settings, self.test_metrics, strict=True):
            metric = cast(MSAMetric, module)
            self.test_results[setting.name] = {k: float(v) for k, v in metric.compute().items()}
            metric.reset()

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        optim = self.cfg.optim
        groups = self.parameter_groups()
        kwargs = {"lr": optim.lr, "weight_decay": optim.weight_decay, "betas": tuple(optim.betas)}
        match optim.name:
            case "adam":
                optimizer = torch.optim.Adam(groups, **kwargs)
            case "adamw":
                optimizer = torch.optim.AdamW(groups, **kwargs)
            case other:
                raise ConfigError(f"unknown optim.name '{other}': use adam or adamw")
        schedule = lr_multiplier(optim.scheduler, self.cfg.trainer.max_epochs)
        if schedule is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        max_norm = self.cfg.optim.clip_norm_per_submodule
        if max_norm is not None:
            # MMIN/IF-MMIN clip each sub-network separately; Lightning's clipping is global.
            for child in self.network.children():
                params = [p for p in child.parameters() if p.grad is not None]
                if params:
                    nn.utils.clip_grad_norm_(params, max_norm)


def lr_multiplier(scheduler: Mapping[str, Any] | DictConfig, max_epochs: int) -> Any:
    """The epoch-level learning-rate multiplier of ``optim.scheduler``, or None for a constant rate.

    ``linear_decay`` (MMIN/IF-MMIN): 1 - max(0, e - n_const) / (n_decay + 1) at 1-based epoch e.
    ``warmup_cosine`` (LNLN/TF-Mamba): linear warm-up over ``warmup_fraction`` of the epochs, then cosine
    to 0.
    """
    cfg = OmegaConf.to_container(scheduler) if isinstance(scheduler, DictConfig) else dict(scheduler)
    assert isinstance(cfg, dict)
    match cfg.get("name", "none"):
        case "none" | None:
            return None
        case "linear_decay":
            n_const, n_decay = cfg["n_const"], cfg["n_decay"]
            return lambda epoch: 1.0 - max(0, epoch + 1 - n_const) / (n_decay + 1)
        case "warmup_cosine":
            warmup = max(1, math.ceil(cfg["warmup_fraction"] * max_epochs))
            rest = max(1, max_epochs - warmup)

            def multiplier(epoch: int) -> float:
                if epoch < warmup:
                    return (epoch + 1) / warmup
                return 0.5 * (1.0 + math.cos(math.pi * min(epoch - warmup, rest) / rest))

            return multiplier
        case other:
            raise ConfigError(
                f"unknown optim.scheduler.name '{other}': use none, linear_decay or warmup_cosine"
            )


def count_parameters(modules: Iterable[nn.Module] | nn.Module) -> int:
    """Number of trainable parameters."""
    modules = [modules] if isinstance(modules, nn.Module) else list(modules)
    return sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)
