"""MMIN and the blocks it shares with IF-MMIN (components/mmin_blocks.py), on tiny hand-made batches."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F

from msabench.config import compose
from msabench.errors import ConfigError
from msabench.models import get
from msabench.models.components.mmin_blocks import (
    LSTMMaxPoolEncoder,
    MLPClassifier,
    ResidualAE,
    TextCNN,
    complete_inputs,
    kaiming_init_,
    missing_inputs,
    reverse_inputs,
    text_source,
)
from msabench.models.mmin.module import MMINPretrain

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


# ---------------------------------------------------------------------------------------------- shared blocks


def _identity_ae(recurrence: str) -> ResidualAE:
    """A 3-block AE whose encoders, decoders and transition are identities (on positive inputs)."""
    ae = ResidualAE(2, [2], 3, recurrence)  # type: ignore[arg-type]
    for layer in ae.modules():
        if isinstance(layer, nn.Linear):
            nn.init.eye_(layer.weight)
            nn.init.zeros_(layer.bias)
    return ae


@pytest.mark.parametrize(
    ("recurrence", "output", "latents"),
    [
        # in_1 = x, in_k = in_{k-1} + out_{k-1}; Tr(in_3 + out_3): x, 2x, 4x -> 8x
        ("mmin", [8.0, 16.0], [1.0, 2.0, 2.0, 4.0, 4.0, 8.0]),
        # out_0 = x, in_k = out_{k-1} + s: x+s, x+2s, x+3s; Tr(out_3)
        ("if_mmin", [2.5, 5.0], [1.5, 3.0, 2.0, 4.0, 2.5, 5.0]),
        # in_0 = x, in_k = in_{k-1} + s: x+s, x+2s, x+3s; Tr(in_3 + out_3) = 2(x + 3s)
        ("if_mmin_2022", [5.0, 10.0], [1.5, 3.0, 2.0, 4.0, 2.5, 5.0]),
    ],
)
def test_residual_ae_recurrences_by_hand(recurrence: str, output: list[float], latents: list[float]) -> None:
    x, s = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, 1.0]])
    reconstruction, latent = _identity_ae(recurrence)(x, s)
    assert torch.allclose(reconstruction, torch.tensor([output]))
    assert torch.allclose(latent, torch.tensor([latents]))


def test_residual_ae_block_shapes_follow_the_authors() -> None:
    ae = ResidualAE(384, [256, 128, 64], 5, "mmin")
    encoder = [(type(m), getattr(m, "out_features", None)) for m in ae.encoders[0]]
    decoder = [(type(m), getattr(m, "out_features", None)) for m in ae.decoders[0]]
    assert encoder == [
        (nn.Linear, 256),
        (nn.LeakyReLU, None),
        (nn.Linear, 128),
        (nn.LeakyReLU, None),
        (nn.Linear, 64),
    ]
    assert decoder == [(nn.Linear, 128), (nn.ReLU, None), (nn.Linear, 256), (nn.ReLU, None), (nn.Linear, 384)]
    assert len(ae.encoders) == len(ae.decoders) == 5 and ae.latent_dim == 320
    reconstruction, latent = ae(torch.randn(3, 384))
    assert reconstruction.shape == (3, 384) and latent.shape == (3, 320)
    with pytest.raises(ValueError, match="invariant"):
        ResidualAE(384, [64], 2, "if_mmin")(torch.randn(3, 384))


def test_lstm_encoder_pools_over_padding_unless_asked_not_to() -> None:
    torch.manual_seed(0)
    encoder = LSTMMaxPoolEncoder(3, 5, "padded")
    x = torch.randn(2, 4, 3)
    valid = torch.tensor([[True, True, False, False], [True, True, True, True]])
    x = x * valid[..., None]
    outputs = encoder.lstm(x)[0]
    assert torch.equal(encoder(x, valid), outputs.max(dim=1).values)  # padding included, as the authors
    encoder.pool = "valid"
    expected = torch.stack([outputs[0, :2].max(dim=0).values, outputs[1].max(dim=0).values])
    assert torch.allclose(encoder(x, valid), expected)
    # valid pooling ignores trailing padding; padded pooling does not in general
    longer = torch.cat([x, torch.zeros(2, 6, 3)], dim=1)
    longer_valid = torch.cat([valid, torch.zeros(2, 6, dtype=torch.bool)], dim=1)
    assert torch.allclose(encoder(longer, longer_valid), expected, atol=1e-6)


def test_text_cnn_equals_the_authors_2d_convolution_and_pads_short_text() -> None:
    torch.manual_seed(0)
    cnn = TextCNN(6, embedding_dim=4, channels=3, kernel_sizes=(3, 4, 5), dropout=0.0)
    x = torch.randn(2, 7, 6)
    pooled = []
    for conv in cnn.convs:  # the authors: a 1-channel (T x D) image, (k x D) kernels
        conv2d = nn.Conv2d(1, 3, (conv.kernel_size[0], 6))
        conv2d.weight.data = conv.weight.data.transpose(1, 2).unsqueeze(1)
        conv2d.bias.data = conv.bias.data
        pooled.append(F.relu(conv2d(x.unsqueeze(1)).squeeze(3)).max(dim=2).values)
    assert torch.allclose(cnn(x), cnn.project(torch.cat(pooled, dim=1)), atol=1e-6)
    assert cnn(torch.randn(2, 2, 6)).shape == (2, 4)  # T_l < 5: zero-padded to the widest kernel


def test_classifier_and_initialisation() -> None:
    head = MLPClassifier(10, [8, 6], 4, dropout=0.5)
    assert [type(m) for m in head] == [
        nn.Linear,
        nn.ReLU,
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.Dropout,
        nn.Linear,
    ]
    layer = nn.Linear(2000, 3000)
    kaiming_init_(layer)
    assert torch.count_nonzero(layer.bias) == 0
    assert abs(layer.weight.std().item() - (2 / 2000) ** 0.5) < 2e-3


def test_reverse_view_is_what_is_missing() -> None:
    batch = tiny_batch(CONDITIONS)
    rev = reverse_inputs(batch, "modality")
    for j, m in enumerate(("text", "audio", "vision")):
        absent = (~CONDITIONS[:, j]).float()[:, None, None]
        assert torch.equal(getattr(rev, m), batch[f"{m}_full"] * absent)
    # under whole-modality missingness the proposed ``complement`` is the same view
    comp = reverse_inputs(batch, "complement")
    for m in ("text", "audio", "vision"):
        assert torch.equal(getattr(comp, m), getattr(rev, m))
    assert torch.equal(comp.text_gate, rev.text_gate)
    # under frame drops it keeps the dropped frames, where ``modality`` gives all-zero sequences
    batch["audio_valid"] = batch["audio_valid_full"]
    batch["audio_keep"] = batch["audio_valid_full"].clone()
    batch["audio_keep"][:, 0] = False
    batch["available"] = torch.ones_like(CONDITIONS)
    assert torch.count_nonzero(reverse_inputs(batch, "modality").audio) == 0
    dropped = reverse_inputs(batch, "complement").audio
    assert torch.equal(dropped[:, 0], batch["audio_full"][:, 0]) and torch.count_nonzero(dropped[:, 1:]) == 0
    with pytest.raises(ValueError, match="complement"):
        reverse_inputs(batch, "frames")  # type: ignore[arg-type]


def test_missing_and_complete_views() -> None:
    batch = tiny_batch(CONDITIONS)
    assert torch.equal(missing_inputs(batch).text, batch["text"])
    assert torch.equal(missing_inputs(batch).text_gate[:, 0], CONDITIONS[:, 0].float())
    assert torch.equal(complete_inputs(batch).vision, batch["vision_full"])
    with pytest.raises(KeyError):
        complete_inputs(tiny_batch(CONDITIONS, train=False))


def test_fine_tuned_bert_is_refused() -> None:
    with pytest.raises(ConfigError, match="bert_finetune"):
        text_source("bert", 768, "/nowhere", True)


# ---------------------------------------------------------------------------------------------- MMIN


def test_stages_and_their_optimisation() -> None:
    pretrain_stage, main_stage = get("mmin").stages(stage_cfg("mmin", "main"))
    assert (pretrain_stage.name, pretrain_stage.policy, pretrain_stage.validation) == (
        "pretrain",
        "complete",
        "complete",
    )
    assert main_stage.name == "main" and main_stage.module is get("mmin") and main_stage.policy is None
    assert get("mmin").paper_policy == "conditions"
    pretrain_cfg, main_cfg = (
        stage_cfg("mmin", "pretrain", dataset="iemocap"),
        stage_cfg("mmin", "main", dataset="iemocap"),
    )
    assert list(pretrain_cfg.optim.betas) == [0.9, 0.999] and list(main_cfg.optim.betas) == [0.5, 0.999]
    assert (pretrain_cfg.optim.clip_norm_per_submodule, main_cfg.optim.clip_norm_per_submodule) == (0.5, 1.0)
    assert (pretrain_cfg.trainer.max_epochs, main_cfg.trainer.max_epochs) == (20, 60)
    assert (main_cfg.optim.scheduler.n_const, main_cfg.optim.scheduler.n_decay) == (30, 30)
    assert (main_cfg.selection.metric, stage_cfg("mmin", "main").selection.metric) == ("ua", "loss")


def test_network_children_are_the_clipped_sub_networks() -> None:
    pretrain, student = build_stages("mmin")
    assert [n for n, _ in student.network.named_children()] == [
        "text_features",
        "encoder_a",
        "encoder_l",
        "encoder_v",
        "imagination",
        "cycle",
        "classifier",
    ]
    assert [n for n, _ in pretrain.network.named_children()] == [
        "text_features",
        "encoder_a",
        "encoder_l",
        "encoder_v",
        "classifier",
    ]


def test_student_starts_from_stage_one_and_the_teacher_is_frozen() -> None:
    pretrain, student = build_stages("mmin")
    for name in ("encoder_a", "encoder_l", "encoder_v"):
        for p, q in zip(
            getattr(student.network, name).parameters(),
            getattr(pretrain.network, name).parameters(),
            strict=True,
        ):
            assert torch.equal(p, q)
    teacher_before = {k: v.clone() for k, v in student.teacher.state_dict().items()}
    assert all(torch.equal(v, pretrain.network.state_dict()[k]) for k, v in teacher_before.items())
    assert not any(p.requires_grad for p in student.teacher.parameters())
    student.train()
    assert not student.teacher.training and student.network.training
    optimizer = torch.optim.Adam([g for g in student.parameter_groups()], lr=0.1)
    optimizer_params = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not optimizer_params & {id(p) for p in student.teacher.parameters()}
    loss = student.training_loss(tiny_batch(CONDITIONS))["loss"]
    loss.backward()
    optimizer.step()
    assert all(torch.equal(v, student.teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert not torch.equal(
        student.network.encoder_a.lstm.weight_ih_l0, pretrain.network.encoder_a.lstm.weight_ih_l0
    )


def test_student_loss_terms_by_definition() -> None:
    _, student = build_stages("mmin")
    student.eval()  # no dropout: the parts can be recomputed exactly
    batch = tiny_batch(CONDITIONS)
    parts = student.training_loss(batch)
    out = student.network(missing_inputs(batch))
    zeros = {m: torch.zeros_like(batch[f"{m}_full"]) for m in ("text", "audio", "vision")}
    # teacher embeddings of x_rev; for an available modality, the teacher applied to an all-zero sequence
    h_a = torch.where(
        CONDITIONS[:, 1:2],
        student.teacher.encoder_a(zeros["audio"]),
        student.teacher.encoder_a(batch["audio_full"]),
    )
    h_l = torch.where(
        CONDITIONS[:, 0:1],
        student.teacher.encoder_l(zeros["text"]),
        student.teacher.encoder_l(batch["text_full"]),
    )
    h_v = torch.where(
        CONDITIONS[:, 2:3],
        student.teacher.encoder_v(zeros["vision"]),
        student.teacher.encoder_v(batch["vision_full"]),
    )
    target = torch.cat([h_a, h_l, h_v], dim=1)  # MMIN's order (a, l, v)
    assert torch.count_nonzero(student.teacher.encoder_a(zeros["audio"])) > 0  # not a zero vector
    assert torch.allclose(parts["imagination"], F.mse_loss(out.reconstruction, target), rtol=1e-5)
    assert torch.allclose(parts["cycle"], F.mse_loss(out.cycle, out.embeddings.flatten(1)), rtol=1e-5)
    assert torch.allclose(parts["task"], F.l1_loss(out.prediction.squeeze(-1), batch["label"]))
    total = parts["task"] + 4.0 * parts["imagination"] + 2.0 * parts["cycle"]
    assert torch.allclose(parts["loss"], total)


def test_cycle_target_is_detached() -> None:
    _, student = build_stages("mmin", "regression", "loss.imagination_weight=0")
    student.eval()
    batch = tiny_batch(CONDITIONS)
    out = student.network(missing_inputs(batch))
    F.mse_loss(out.cycle, out.embeddings.flatten(1).detach()).backward()
    via_reconstruction = student.network.encoder_v.lstm.weight_ih_l0.grad.clone()
    student.zero_grad()
    student.training_loss(batch)["cycle"].backward()
    assert torch.allclose(student.network.encoder_v.lstm.weight_ih_l0.grad, via_reconstruction)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_forward_reads_the_missing_view_only(task: str) -> None:
    _, student = build_stages("mmin", task)
    student.teacher.register_forward_pre_hook(lambda *_: pytest.fail("the teacher ran at test time"))
    for name, sub in student.teacher.named_children():
        if name != "text_features":  # the text source is shared with the student
            sub.register_forward_pre_hook(lambda *_: pytest.fail("the teacher ran at test time"))
    student.eval()
    batch = tiny_batch(CONDITIONS, train=False, classes=4 if task == "classification" else None)
    prediction = student(batch)
    assert prediction.shape == ((6, 4) if task == "classification" else (6,))


def test_classification_head_trains_with_cross_entropy() -> None:
    _, student = build_stages("mmin", "classification")
    student.eval()
    batch = tiny_batch(CONDITIONS, classes=4)
    parts = student.training_loss(batch)
    logits = student.network(missing_inputs(batch)).prediction
    assert logits.shape == (6, 4)
    assert torch.allclose(parts["task"], F.cross_entropy(logits, batch["label"]))


def test_pretrain_reads_complete_data_and_reloads_from_a_state_dict() -> None:
    pretrain, student = build_stages("mmin")
    batch = tiny_batch(torch.ones(6, 3, dtype=torch.bool))
    assert pretrain(batch).shape == (6,)
    assert set(pretrain.training_loss(batch)) == {"loss"}
    assert isinstance(pretrain, MMINPretrain)
    # evaluation rebuilds the stages untrained and loads the final state dict
    rebuilt = type(student)(student.cfg, student.dims, previous=None)
    rebuilt.load_state_dict(student.state_dict())
    student.eval(), rebuilt.eval()
    test_batch = tiny_batch(CONDITIONS, train=False)
    assert torch.equal(rebuilt(test_batch), student(test_batch))
