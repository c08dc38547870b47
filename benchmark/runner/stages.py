"""A method's training stages, each an ordinary ``Trainer.fit``, and the module they end with."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from msabench.config.schema import merge_typed, plain_dict
from msabench.models.base import MSAMethod
from msabench.protocols import Setting, build_policy
from msabench.runner.console import EpochLines, RunProgressBar, StageView, uses_bar
from msabench.runner.request import validation_settings
from msabench.runner.resume import ResumeClock, ResumeContext, ResumePoint, StagePoints, carried_log
from msabench.runner.trainer import build_trainer

if TYPE_CHECKING:
    from msabench.runner.request import PreparedRun


def stage_config(cfg: DictConfig, stage: str) -> DictConfig:
    """The run's config with the block ``stages.<stage>`` merged over it (typed as the run's), read-only."""
    block = cfg.stages.get(stage) if cfg.stages else None
    if not block:
        return cfg
    merged = merge_typed(cfg, block, f"the stages.{stage} block")
    OmegaConf.set_readonly(merged, True)
    return merged


def policy_params(cfg: DictConfig) -> dict[str, Any]:
    """The training policy's parameters (the ``policy`` block)."""
    return plain_dict(cfg.policy)


class _FromEpoch(L.Callback):
    """Runs the callback's epoch-end hooks from epoch ``start`` (0-based) on; it never sees earlier epochs."""

    def __init__(self, start: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start = start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch >= self.start:
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch >= self.start:
            super().on_validation_end(trainer, pl_module)


class SelectionCheckpoint(_FromEpoch, L.pytorch.callbacks.ModelCheckpoint):
    """The stage's best validation epoch among those from the module's ``selection_start_epoch`` on."""


class SelectionEarlyStopping(_FromEpoch, L.pytorch.callbacks.EarlyStopping):
    """Early stopping whose best value and patience count from the module's ``selection_start_epoch`` on."""


def fit_stages(
    prepared: PreparedRun, resume: ResumeContext | None = None
) -> tuple[MSAMethod, dict[str, Any]]:
    """Train every stage in order, each from the previous one; writes ``model.ckpt``.

    Each stage trains under its own policy (or the run's), selects its checkpoint on validation (among the
    epochs from its module's ``selection_start_epoch`` on; early stopping counts from there too) and continues
    from the selected weights. With ``resume``, every epoch leaves a resume point: a stage that an earlier
    attempt finished is not trained again, and a stage it was training carries on from its last epoch.

    Returns:
        The final stage's module with its selected weights, and the final stage's ``epochs``,
        ``ckpt_epoch``, ``max_epochs`` (its cap), ``patience`` (None: it trains to the cap) and ``selection``.
    """
    cfg, run_dir, dm = prepared.cfg, prepared.run_dir, prepared.datamodule
    stages = prepared.method_cls.stages(cfg)
    previous: MSAMethod | None = None
    info: dict[str, Any] = {}
    for index, stage in enumerate(stages):
        stage_cfg = stage_config(cfg, stage.name)
        policy_name = stage.policy or prepared.policy_name
        # Only a policy that trains per setting reads the setting; the others ignore it.
        dm.train_policy = build_policy(
            policy_name, matched=prepared.request.settings[0], **policy_params(stage_cfg)
        )
        dm.validation = (
            [Setting("complete", mask_seed=cfg.evaluation.mask_seed)]
            if stage.validation == "complete"
            else validation_settings(policy_name, prepared.request.settings, stage_cfg)
        )
        dm.validation_complete_view = stage.module.validation_uses_complete_view
        L.seed_everything(cfg.seed + index, workers=True, verbose=False)
        module = stage.module(stage_cfg, dm.dims, previous=previous)
        points = StagePoints(run_dir, stage.name)
        finished = points.finished() if resume is not None else None
        if finished is not None:
            _load_selected(module, points.selected)
            info, previous = finished, module
            continue
        monitor = f"val/{stage_cfg.selection.metric}"
        start = module.selection_start_epoch()
        checkpoint = SelectionCheckpoint(
            start,
            dirpath=points.selected.parent,
            filename=points.selected.stem,
            monitor=monitor,
            mode=stage_cfg.selection.mode,
            save_top_k=1,
            save_weights_only=True,
            enable_version_counter=False,
        )
        callbacks: list[Any] = [checkpoint]
        if resume is not None:
            callbacks.append(ResumePoint(points, resume.record, resume.clock))
        view = StageView(
            stage.name,
            index,
            len(stages),
            sum(int(stage_config(cfg, later.name).trainer.max_epochs) for later in stages[index + 1 :]),
            monitor,
            stage_cfg.selection.mode,
            resume.clock if resume is not None else ResumeClock(),
            selection_from=start + 1,
        )
        bar = uses_bar(stage_cfg.trainer.enable_progress_bar)
        callbacks.append(RunProgressBar(view) if bar else EpochLines(view))
        if stage_cfg.trainer.patience is not None:
            callbacks.append(
                SelectionEarlyStopping(
                    start,
                    monitor=monitor,
                    mode=stage_cfg.selection.mode,
                    patience=stage_cfg.trainer.patience,
                    min_delta=1e-6,
                    check_finite=False,
                )
            )
        loggers: list[Any] = []
        if cfg.logging.csv and not stage_cfg.trainer.fast_dev_run:
            loggers.append(L.pytorch.loggers.CSVLogger(run_dir, name="logs", version=stage.name))
        if cfg.logging.wandb:
            from msabench.runner import wandb_logging

            wandb_logger = wandb_logging.stage_logger(prepared, stage.name, len(stages))
            if wandb_logger is not None:
                loggers.append(wandb_logger)
        trainer = build_trainer(
            stage_cfg,
            run_dir,
            callbacks,
            logger=loggers or False,
            profiler=prepared.request.profiler,
            bar=bar,
        )
        resume_ckpt, resumed_epochs = (points.resume_from() if resume is not None else None) or (None, None)
        with carried_log(run_dir / "logs" / stage.name / "metrics.csv", resumed_epochs):
            trainer.fit(module, datamodule=dm, ckpt_path=resume_ckpt)
        if checkpoint.best_model_path:
            ckpt_epoch = _load_selected(module, Path(checkpoint.best_model_path))
        else:  # fast_dev_run and friends save nothing: keep the last weights
            ckpt_epoch = trainer.current_epoch
        # Each stage's epochs, so that a multi-stage run's summary tells them apart (the rest: the last's).
        done = {"name": stage.name, "epochs": trainer.current_epoch, "ckpt_epoch": ckpt_epoch}
        info = {
            "epochs": trainer.current_epoch,
            "ckpt_epoch": ckpt_epoch,
            "max_epochs": stage_cfg.trainer.max_epochs,
            "patience": stage_cfg.trainer.patience,
            "selection": f"val:{stage_cfg.selection.metric}:{stage_cfg.selection.mode}",
            "stages": [*info.get("stages", []), {**done, "max_epochs": stage_cfg.trainer.max_epochs}],
        }
        if resume is not None and checkpoint.best_model_path:
            points.mark_finished(info)
        previous = module
    assert previous is not None
    final = StagePoints(run_dir, stages[-1].name).selected
    if final.exists():
        shutil.copyfile(final, run_dir / "model.ckpt")
    else:
        torch.save({"state_dict": previous.state_dict()}, run_dir / "model.ckpt")
    return previous, info


def _load_selected(module: MSAMethod, path: Path) -> int:
    """Load a stage's selected weights into ``module``; returns the epoch they are from (1-based)."""
    # One read gives both the selected weights and the epoch they are from.
    state = torch.load(path, map_location=module.device, weights_only=True)
    module.load_state_dict(state["state_dict"])
    return int(state.get("epoch", -1)) + 1  # Lightning stores the 0-based index


def build_final_module(prepared: PreparedRun) -> MSAMethod:
    """The module of the run's final stage, every earlier stage built untrained (weights: model.ckpt)."""
    cfg, dims = prepared.cfg, prepared.datamodule.dims
    previous: MSAMethod | None = None
    for stage in prepared.method_cls.stages(cfg):
        previous = stage.module(stage_config(cfg, stage.name), dims, previous=previous)
    assert previous is not None
    return previous


def load_checkpoint(prepared: PreparedRun) -> MSAMethod:
    """The run's final-stage module with the weights it selected (``model.ckpt``), on the CPU."""
    module = build_final_module(prepared)
    state = torch.load(prepared.run_dir / "model.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    return module
