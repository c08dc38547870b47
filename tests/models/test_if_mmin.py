"""IF-MMIN on tiny hand-made batches: CMD pretraining, the IF-IM student, its three losses, its teacher.

The blocks IF-MMIN shares with MMIN (encoders, residual autoencoder, views) are tested in test_mmin.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from torch.nn import functional as F

from msabench.config import compose
from msabench.errors import ConfigError
from msabench.models import get
from msabench.models.components.losses import central_moment_discrepancy
from msabench.models.components.mmin_blocks import missing_inputs
from msabench.models.if_mmin.losses import invariant_cmd
from msabench.models.if_mmin.module import IFMMINPretrain

SHAPES = {"text": (7, 6), "audio": (9, 3), "vision": (8, 4)}
CONDITIONS = torch.tensor(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=torch.bool
)


def tiny_dims(task: str = "regression") -> SimpleNamespace:
    return SimpleNamespace(
        text_len=7,
        text_dim=6,
        audio_len=9,
        audio_dim=3,
        vision_len=8,
        vision_dim=4,
        has_text_ids=False,
        task=task,
        num_classes=4 if task == "classification" else None,
        metric_family="iemocap" if task == "classification" else "mosi",
    )


def tiny_batch(
    available: torch.Tensor, *, train: bool = True, classes: int | None = None, seed: int = 0
) -> dict:
    """A batch after the ``conditions`` policy: an absent modality has no positions (zero features, no valid
    step); training batches also carry the complete view and its padding masks."""
    gen = torch.Generator().manual_seed(seed)
    size = available.shape[0]
    batch: dict = {"available": available, "index": torch.arange(size)}
    for j, (m, (length, dim)) in enumerate(SHAPES.items()):
        lengths = torch.randint(2, length + 1, (size,), generator=gen)
        valid = torch.arange(length) < lengths[:, None]
        full = torch.randn(size, length, dim, generator=gen) * valid[..., None]
        keep = valid & available[:, j : j + 1]
        batch[m], batch[f"{m}_valid"], batch[f"{m}_keep"] = full * keep[..., None], keep, keep
        if train:
            batch[f"{m}_full"], batch[f"{m}_valid_full"] = full, valid
    if classes:
        batch["label"] = torch.randint(0, classes, (size,), generator=gen)
    else:
        batch["label"] = torch.randn(size, generator=gen)
    return batch


def stage_cfg(method: str, stage: str, *overrides: str, dataset: str = "synthetic"):
    family = "iemocap" if dataset.endswith("iemocap") else "mosi"
    cfg = compose(method, dataset, family, overrides=overrides, extra_blocks=("smoke",))
    block = cfg.stages.get(stage)
    return OmegaConf.merge(OmegaConf.to_container(cfg), OmegaConf.to_container(block)) if block else cfg


def build_stages(method: str, task: str = "regression", *overrides: str):
    dataset = "synthetic-iemocap" if task == "classification" else "synthetic"
    dims = tiny_dims(task)
    cls = get(method)
    pretrain_stage, main_stage = cls.stages(stage_cfg(method, "main", dataset=dataset))
    torch.manual_seed(0)
    pretrain = pretrain_stage.module(stage_cfg(method, "pretrain", *overrides, dataset=dataset), dims)
    student = main_stage.module(
        stage_cfg(method, "main", *overrides, dataset=dataset), dims, previous=pretrain
    )
    return pretrain, student


def test_cmd_over_the_three_pairs_by_hand() -> None:
    # B = 2, E = 1: s_a = (0, 0), s_l = (1, 1), s_v = (0, 2)
    s = torch.tensor([[[0.0], [1.0], [0.0]], [[0.0], [1.0], [2.0]]])
    # CMD(l, v) = |1 - 1| + |0 - 1| (2nd) + 0 + |0 - 1| (4th) + 0 = 2; CMD(l, a) = 1; CMD(a, v) = 1 + 1 + 1
    assert torch.allclose(invariant_cmd(s, 5), torch.tensor(2.0))
    assert torch.allclose(central_moment_discrepancy(s[:, 1], s[:, 2], 5), torch.tensor(2.0))


def test_stages_and_their_optimisation() -> None:
    pretrain_stage, main_stage = get("if_mmin").stages(stage_cfg("if_mmin", "main"))
    assert (pretrain_stage.module, pretrain_stage.policy, pretrain_stage.validation) == (
        IFMMINPretrain,
        "complete",
        "complete",
    )
    assert main_stage.module is get("if_mmin") and main_stage.policy is None
    assert get("if_mmin").paper_policy == "conditions"
    pretrain = stage_cfg("if_mmin", "pretrain", dataset="iemocap")
    main = stage_cfg("if_mmin", "main", dataset="iemocap")
    assert list(pretrain.optim.betas) == [0.9, 0.999] and list(main.optim.betas) == [0.5, 0.999]
    assert (pretrain.optim.clip_norm_per_submodule, main.optim.clip_norm_per_submodule) == (0.5, 1.0)
    assert (pretrain.trainer.max_epochs, main.trainer.max_epochs) == (20, 40)
    assert (pretrain.data.batch_size, main.data.batch_size) == (64, 128)
    assert (pretrain.optim.scheduler.n_const, main.optim.scheduler.n_const) == (10, 20)
    assert main.loss.invariance_weight == 100.0 and main.model.ifim_variant == "current"
    assert main.selection.metric == "ua" and stage_cfg("if_mmin", "main").selection.metric == "loss"


def test_pretraining_loss_is_task_plus_cmd() -> None:
    pretrain, _ = build_stages("if_mmin", "regression", "loss.cmd_warmup_epochs=0")  # the authors' weight
    pretrain.eval()
    batch = tiny_batch(torch.ones(6, 3, dtype=torch.bool))
    parts = pretrain.training_loss(batch)
    out = pretrain.network(missing_inputs(batch))
    assert out.invariant.shape == out.embeddings.shape == (6, 3, 8)
    assert torch.allclose(out.invariant, pretrain.network.shared(out.embeddings))  # one S for every modality
    assert torch.allclose(parts["cmd"], invariant_cmd(out.invariant, 5))
    assert torch.allclose(parts["task"], F.l1_loss(out.prediction.squeeze(-1), batch["label"]))
    assert torch.allclose(parts["loss"], parts["task"] + parts["cmd"])
    assert pretrain.network.classifier[0].in_features == 6 * 8  # C1 reads [h_a, h_l, h_v, s_a, s_l, s_v]


@pytest.mark.parametrize(("epoch", "factor"), [(0, 0.0), (1, 0.5), (2, 1.0), (3, 1.0)])
def test_stage_one_ramps_the_cmd_weight_in(
    epoch: int, factor: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    pretrain, _ = build_stages("if_mmin", "regression", "loss.cmd_warmup_epochs=2")
    pretrain.eval()
    monkeypatch.setattr(type(pretrain), "current_epoch", property(lambda self: epoch))
    parts = pretrain.training_loss(tiny_batch(torch.ones(6, 3, dtype=torch.bool)))
    assert parts["cmd"].item() > 0
    assert torch.allclose(parts["loss"], parts["task"] + factor * parts["cmd"])


def test_the_authors_cmd_without_warm_up_except_on_the_cpu_budget() -> None:
    for dataset in ("iemocap", "mosi", "sims"):
        assert stage_cfg("if_mmin", "pretrain", dataset=dataset).loss.cmd_warmup_epochs == 0
    synthetic = stage_cfg("if_mmin", "pretrain", dataset="synthetic")
    assert (synthetic.loss.cmd_warmup_epochs, synthetic.trainer.max_epochs) == (2, 4)


def test_a_warm_up_longer_than_stage_one_is_one_config_error() -> None:
    with pytest.raises(ConfigError, match="loss.cmd_warmup_epochs=4 leaves stage 1 no epoch"):
        build_stages("if_mmin", "regression", "loss.cmd_warmup_epochs=4")
    assert build_stages("if_mmin", "regression", "loss.cmd_warmup_epochs=3")[0].selection_start_epoch() == 3
    assert build_stages("if_mmin", "regression", "loss.cmd_warmup_epochs=0")[0].selection_start_epoch() == 0


def test_stage_one_selects_among_epochs_at_full_cmd_weight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's stage 1 with a 2-epoch warm-up: its validation loss made lowest at the first epoch (as the
    warm-up's task-only epochs are), the selected teacher is still from epoch 3, the first at full weight."""
    import msabench

    def rising(self: IFMMINPretrain, batch: dict, prediction: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": prediction.new_tensor(float(self.current_epoch))}

    monkeypatch.setattr(IFMMINPretrain, "validation_loss", rising)
    smoke = ["model.embedding_dim=8", "model.cnn_channels=4", "model.classifier_layers=[8]"]
    smoke += ["model.ae_layers=[8,4]", "model.n_blocks=2", "data.options.n_scale=0.05", "data.batch_size=32"]
    budget = ["trainer.max_epochs=1", "stages.pretrain.trainer.max_epochs=3", "loss.cmd_warmup_epochs=2"]
    budget += ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]
    msabench.run(
        method="if_mmin", protocol="inter", condition="ta", output=tmp_path, overrides=[*smoke, *budget]
    )
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    selected = torch.load(run_dir / "checkpoints" / "pretrain.ckpt", weights_only=True)
    assert selected["epoch"] == 2  # 0-based: the CMD weight is epoch / 2, full from the third epoch


def test_student_starts_from_stage_one_and_the_teacher_is_frozen() -> None:
    pretrain, student = build_stages("if_mmin")
    for name in ("encoder_a", "encoder_l", "encoder_v", "shared"):
        ours, theirs = getattr(student.network, name), getattr(pretrain.network, name)
        assert all(torch.equal(p, q) for p, q in zip(ours.parameters(), theirs.parameters(), strict=True))
    assert [n for n, _ in student.network.named_children()] == [
        "text_features",
        "encoder_a",
        "encoder_l",
        "encoder_v",
        "shared",
        "imagination",
        "classifier",
    ]
    before = {k: v.clone() for k, v in student.teacher.state_dict().items()}
    student.train()
    assert not student.teacher.training and not any(p.requires_grad for p in student.teacher.parameters())
    optimizer = torch.optim.Adam(student.parameter_groups(), lr=0.1)
    student.training_loss(tiny_batch(CONDITIONS))["loss"].backward()
    optimizer.step()
    assert all(torch.equal(v, student.teacher.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(student.network.shared[0].weight, pretrain.network.shared[0].weight)


def test_student_loss_terms_by_definition() -> None:
    _, student = build_stages("if_mmin")
    student.eval()
    batch = tiny_batch(CONDITIONS)
    parts = student.training_loss(batch)
    out = student.network(missing_inputs(batch))
    teacher = student.teacher
    zeros = {m: torch.zeros_like(batch[f"{m}_full"]) for m in ("text", "audio", "vision")}
    full_a, full_l = teacher.encoder_a(batch["audio_full"]), teacher.encoder_l(batch["text_full"])
    full_v = teacher.encoder_v(batch["vision_full"])
    # imagination target: the teacher on x_rev = (1 - a) x, i.e. teacher(zeros) for the available modalities
    rev_a = torch.where(CONDITIONS[:, 1:2], teacher.encoder_a(zeros["audio"]), full_a)
    rev_l = torch.where(CONDITIONS[:, 0:1], teacher.encoder_l(zeros["text"]), full_l)
    rev_v = torch.where(CONDITIONS[:, 2:3], teacher.encoder_v(zeros["vision"]), full_v)
    imagination = F.mse_loss(out.reconstruction, torch.cat([rev_a, rev_l, rev_v], dim=1))
    # invariance target: the teacher's S on the complete input, (a, l, v)
    invariant = torch.cat([teacher.shared(full_a), teacher.shared(full_l), teacher.shared(full_v)], dim=1)
    invariance = F.mse_loss(out.invariant.flatten(1), invariant)
    assert torch.allclose(parts["imagination"], imagination, rtol=1e-5)
    assert torch.allclose(parts["invariance"], invariance, rtol=1e-5)
    assert torch.allclose(parts["loss"], parts["task"] + imagination + 100.0 * invariance, rtol=1e-5)


def test_invariant_features_feed_every_imagination_block() -> None:
    _, student = build_stages("if_mmin")
    student.eval()
    out = student.network(missing_inputs(tiny_batch(CONDITIONS, train=False)))
    h, s = out.embeddings.flatten(1), out.invariant.flatten(1)
    ae = student.network.imagination
    block_out, latents = h, []
    for encoder, decoder in zip(ae.encoders, ae.decoders, strict=True):  # current: in_k = out_{k-1} + s
        latents.append(encoder(block_out + s))
        block_out = decoder(latents[-1])
    assert torch.allclose(out.latent, torch.cat(latents, dim=1), atol=1e-6)
    assert torch.allclose(out.reconstruction, ae.transition(block_out), atol=1e-6)
    _, older = build_stages("if_mmin", "regression", "model.ifim_variant=2022")
    assert older.network.imagination.recurrence == "if_mmin_2022"
    assert (
        build_stages("if_mmin", "regression", "loss.invariance_weight=1")[1].cfg.loss.invariance_weight == 1.0
    )


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_forward_reads_the_missing_view_only(task: str) -> None:
    _, student = build_stages("if_mmin", task)
    for name, sub in student.teacher.named_children():
        if name != "text_features":  # the text source is shared with the student
            sub.register_forward_pre_hook(lambda *_: pytest.fail("the teacher ran at test time"))
    student.eval()
    batch = tiny_batch(CONDITIONS, train=False, classes=4 if task == "classification" else None)
    assert student(batch).shape == ((6, 4) if task == "classification" else (6,))


def test_reloads_from_a_state_dict_without_previous_stage() -> None:
    _, student = build_stages("if_mmin", "classification")
    rebuilt = type(student)(student.cfg, student.dims, previous=None)
    rebuilt.load_state_dict(student.state_dict())
    student.eval(), rebuilt.eval()
    batch = tiny_batch(CONDITIONS, train=False, classes=4)
    assert torch.equal(rebuilt(batch), student(batch))
