"""UMDF: each loss term on hand-checked cases, the layers, shapes, masking, and what forward may see."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor

from msabench import config as config_lib
from msabench.core.batch import complete_view
from msabench.errors import ConfigError
from msabench.models.components.layers import window_any, window_mean
from msabench.models.umdf.dfim import ANCHORS, DFIM, resample_onto
from msabench.models.umdf.layers import MaskedAttention
from msabench.models.umdf.losses import prediction_distillation, representation_distillation
from msabench.models.umdf.module import UMDFMethod
from msabench.protocols.settings import Setting

LENGTHS = {"text": 6, "audio": 9, "vision": 11}
WIDTHS = {"text": 8, "audio": 3, "vision": 4}


def make_cfg(*overrides: str):
    return config_lib.compose("umdf", "synthetic", "mosi", overrides=list(overrides), extra_blocks=("smoke",))


def make_dims(task: str = "regression") -> SimpleNamespace:
    return SimpleNamespace(
        text_len=LENGTHS["text"],
        text_dim=WIDTHS["text"],
        audio_len=LENGTHS["audio"],
        audio_dim=WIDTHS["audio"],
        vision_len=LENGTHS["vision"],
        vision_dim=WIDTHS["vision"],
        has_text_ids=False,
        task=task,
        num_classes=4 if task == "classification" else None,
        metric_family="iemocap" if task == "classification" else "mosi",
    )


def make_batch(
    size: int = 4, rate: float = 0.4, seed: int = 0, task: str = "regression"
) -> dict[str, Tensor]:
    """A training batch with both views: right-padded valid masks, a random keep mask inside them."""
    g = torch.Generator().manual_seed(seed)
    batch: dict[str, Tensor] = {}
    for m, length in LENGTHS.items():
        full = torch.randn(size, length, WIDTHS[m], generator=g)
        valid = torch.arange(length) < torch.randint(3, length + 1, (size, 1), generator=g)
        keep = valid & (torch.rand(size, length, generator=g) >= rate)
        batch[f"{m}_full"] = full * valid.unsqueeze(-1)
        batch[m] = full * keep.unsqueeze(-1)
        batch[f"{m}_valid"], batch[f"{m}_keep"] = valid, keep
    batch["available"] = torch.ones(size, 3, dtype=torch.bool)
    if task == "classification":
        batch["label"] = torch.randint(0, 4, (size,), generator=g)
    else:
        batch["label"] = torch.randn(size, generator=g)
    return batch


def missing_only(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in batch.items() if not k.endswith("_full")}


def make_method(*overrides: str, task: str = "regression") -> UMDFMethod:
    torch.manual_seed(0)
    return UMDFMethod(make_cfg(*overrides), make_dims(task))


# ------------------------------------------------------------------ loss terms
def test_prediction_distillation_regression_is_mse_to_the_detached_teacher() -> None:
    student = torch.tensor([1.0, 2.0], requires_grad=True)
    teacher = torch.tensor([0.0, 4.0], requires_grad=True)
    loss = prediction_distillation(student, teacher, classification=False, temperature=2.0)
    assert loss.item() == pytest.approx((1.0 + 4.0) / 2)
    loss.backward()
    assert torch.allclose(student.grad, torch.tensor([1.0, -2.0]))  # 2 (s - t) / B
    assert teacher.grad is None


def test_prediction_distillation_classification_is_tau_squared_kl() -> None:
    # tau = 2: teacher logits (2 ln 3, 0) soften to (3/4, 1/4); student (0, 0) to (1/2, 1/2).
    teacher = torch.tensor([[2 * math.log(3.0), 0.0]], requires_grad=True)
    student = torch.zeros(1, 2, requires_grad=True)
    loss = prediction_distillation(student, teacher, classification=True, temperature=2.0)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert loss.item() == pytest.approx(4.0 * kl, rel=1e-6)
    loss.backward()
    assert teacher.grad is None
    # d/dz_S of tau^2 KL = tau (p_S - p_T) = 2 * ((1/2, 1/2) - (3/4, 1/4)).
    assert torch.allclose(student.grad, torch.tensor([[-0.5, 0.5]]))


def test_representation_distillation_sums_modalities_and_joint() -> None:
    student_modality = torch.zeros(1, 3, 2, requires_grad=True)
    teacher_modality = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, 0.0]]], requires_grad=True)
    student_joint = torch.zeros(1, 2, requires_grad=True)
    teacher_joint = torch.tensor([[1.0, 3.0]], requires_grad=True)
    present = torch.ones(1, 3, dtype=torch.bool)
    loss = representation_distillation(
        student_modality, student_joint, teacher_modality, teacher_joint, present
    )
    # per modality: (1 + 1) / 2 + (4 + 0) / 2 + 0 = 3; joint: (1 + 9) / 2 = 5
    assert loss.item() == pytest.approx(8.0)
    loss.backward()
    assert teacher_modality.grad is None and teacher_joint.grad is None
    assert student_modality.grad.abs().sum() > 0


def test_representation_distillation_leaves_out_absent_modalities() -> None:
    """An absent modality has no representation (its pooled output is zeros): nothing to distil."""
    teacher_modality = torch.tensor(
        [[[1.0, 1.0], [2.0, 0.0], [4.0, 4.0]], [[3.0, 3.0], [0.0, 2.0], [8.0, 8.0]]]
    )
    student_modality = torch.zeros(2, 3, 2, requires_grad=True)
    joint = torch.zeros(2, 2)
    present = torch.tensor([[True, True, False], [True, False, False]])
    loss = representation_distillation(student_modality, joint, teacher_modality, joint, present)
    # text over both samples: (1 + 9) / 2 = 5; audio over the first only: 2; vision over none: 0
    assert loss.item() == pytest.approx(7.0)
    loss.backward()
    assert student_modality.grad[0, 2].abs().sum() == 0 and student_modality.grad[1, 1:].abs().sum() == 0


def test_training_loss_parts_match_two_independent_forward_passes() -> None:
    method = make_method().eval()  # no dropout: each view's pass is reproducible
    batch = make_batch()
    parts = method.training_loss(batch)
    missing, complete = method(missing_only(batch)), method(complete_view(batch))
    label = batch["label"]
    mse = torch.nn.functional.mse_loss
    assert torch.allclose(parts["task_missing"], mse(missing, label))
    assert torch.allclose(parts["task_complete"], mse(complete, label))
    assert torch.allclose(parts["distill_pred"], mse(missing, complete))
    assert torch.allclose(parts["reverse_pred"], parts["distill_pred"])  # same value, other gradient
    assert parts["task_missing"] != parts["task_complete"]  # two different views
    # The spec's weights: tasks 1 + 1, prediction 1, representation 0.5, reverse 0.1 x both.
    expected = (
        parts["task_missing"]
        + parts["task_complete"]
        + parts["distill_pred"]
        + 0.5 * parts["distill_rep"]
        + 0.1 * (parts["reverse_pred"] + 0.5 * parts["reverse_rep"])
    )
    assert torch.allclose(parts["loss"], expected)
    one_way = UMDFMethod(make_cfg("loss.bidirectional=false"), make_dims()).eval()
    one_way.load_state_dict(method.state_dict())
    one_way_parts = one_way.training_loss(batch)
    assert "reverse_pred" not in one_way_parts
    assert torch.allclose(
        one_way_parts["loss"], expected - 0.1 * (parts["reverse_pred"] + 0.5 * parts["reverse_rep"])
    )


def test_distillation_gradients_flow_complete_to_missing_and_back_at_a_tenth() -> None:
    # Only prediction distillation: d/dm MSE(m, sg c) = 2 (m - c) / B and d/dc 0.1 MSE(c, sg m) = -0.1 of it.
    method = make_method("loss.task_missing=0", "loss.task_complete=0", "loss.representation=0")
    method.eval()  # no dropout, so both views are deterministic
    outputs = []

    def keep_grad(module, args, output):
        output.prediction.retain_grad()
        outputs.append(output)

    method.network.register_forward_hook(keep_grad)
    method.training_loss(make_batch())["loss"].backward()
    missing, complete = outputs
    assert missing.prediction.grad.abs().sum() > 0
    assert torch.allclose(complete.prediction.grad, -0.1 * missing.prediction.grad, atol=1e-7)


def test_classification_head_uses_cross_entropy_and_kl() -> None:
    method = make_method(task="classification")
    batch = make_batch(task="classification")
    method.eval()
    assert method(missing_only(batch)).shape == (4, 4)
    parts = method.training_loss(batch)
    expected_ce = torch.nn.functional.cross_entropy(method(batch), batch["label"])
    assert torch.allclose(parts["task_missing"], expected_ce)
    assert parts["distill_pred"] >= 0 and torch.isfinite(parts["loss"])


# ------------------------------------------------------------------ layers
def test_masked_attention_ignores_masked_keys_and_zeroes_empty_rows() -> None:
    torch.manual_seed(0)
    attention = MaskedAttention(dim=4, num_heads=2).eval()
    query, source = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    mask = torch.tensor([[True, True, False, False, False], [False] * 5])
    changed = source.clone()
    changed[:, 2:] = 1e3  # padding of sample 0, everything of sample 1
    out, out_changed = attention(query, source, mask), attention(query, changed, mask)
    assert torch.allclose(out, out_changed)
    assert torch.equal(out[1], torch.zeros(3, 4))  # no key: zero output, not NaN
    reference = attention(query[:1], source[:1, :2], torch.ones(1, 2, dtype=torch.bool))
    assert torch.allclose(out[:1], reference, atol=1e-6)


def test_resample_onto_hand_cases() -> None:
    x = torch.tensor([[[1.0], [2.0], [3.0], [4.0], [9.0]]])
    valid = torch.tensor([[True, True, True, True, False]])
    two = torch.tensor([[True, True, False]])
    assert torch.allclose(resample_onto(x, valid, two), torch.tensor([[[1.5], [3.5], [0.0]]]))
    assert torch.allclose(resample_onto(x, valid, valid), x * valid[..., None])  # identity when aligned
    # Two steps onto three: the middle anchor step overlaps both halves equally.
    short = torch.tensor([[[2.0], [6.0]]])
    three = torch.ones(1, 3, dtype=torch.bool)
    assert torch.allclose(
        resample_onto(short, torch.ones(1, 2, dtype=torch.bool), three), torch.tensor([[[2.0], [4.0], [6.0]]])
    )


@pytest.mark.parametrize("pooling", ["mean", "mean_last"])
def test_a_sample_without_its_anchor_takes_the_next_present_timeline(pooling: str) -> None:
    torch.manual_seed(0)
    dfim = DFIM(4, "text", pooling)
    ys = [torch.randn(3, n, 4) for n in (5, 7, 6)]
    valids = [torch.arange(n) < torch.tensor([[4], [5], [3]]) for n in (5, 7, 6)]
    valids[0] = valids[0].clone()
    valids[0][1] = False  # text absent from sample 1: no positions
    joint = dfim(ys, valids)
    assert torch.count_nonzero(joint[1]) > 0  # built from audio and vision, not empty
    # Sample 1 is pooled as if audio were the anchor (the absent text contributes zeros either way).
    dfim.anchor = ANCHORS.index("audio")
    one = [y[1:2] for y in ys], [v[1:2] for v in valids]
    torch.testing.assert_close(joint[1:2], dfim(*one))
    # The samples that have their text are pooled exactly as in a batch where every sample has it.
    dfim.anchor = ANCHORS.index("text")
    rest = [y[[0, 2]] for y in ys], [v[[0, 2]] for v in valids]
    torch.testing.assert_close(joint[[0, 2]], dfim(*rest))


def test_window_mean_averages_valid_steps_only() -> None:
    x = torch.tensor([[[1.0], [3.0], [0.0], [5.0], [7.0]]])
    valid = torch.tensor([[True, True, True, True, False]])
    # windows of 2: (1, 3), (0 dropped, 5), (7 padding) -> 2, 2.5, 0
    assert torch.allclose(window_mean(x, valid, 2), torch.tensor([[[2.0], [2.5], [0.0]]]))
    assert torch.equal(window_any(valid, 2), torch.tensor([[True, True, False]]))


def test_max_len_sets_strides_from_the_padded_lengths() -> None:
    method = make_method("model.max_len=4")
    assert method.network.strides == (2, 3, 3)  # ceil(6/4), ceil(9/4), ceil(11/4)
    assert make_method("model.max_len=null").network.strides == (1, 1, 1)


# ------------------------------------------------------------------ shapes and masking
@pytest.mark.parametrize("pooling, width", [("mean", 8), ("mean_last", 16)])
@pytest.mark.parametrize("summary", ["learned", "mean"])
def test_output_shapes(pooling: str, width: int, summary: str) -> None:
    method = make_method(
        f"model.pooling={pooling}", f"model.coarse_summary={summary}", "model.mcim_order=parallel"
    )
    out = method.encode(make_batch(size=5))
    assert (
        out.prediction.shape == (5, 1) and out.modality.shape == (5, 3, 8) and out.joint.shape == (5, width)
    )
    assert method(make_batch(size=5)).shape == (5,)


@pytest.mark.parametrize("attend_dropped", ["true", "false"])
def test_wholly_missing_modality_and_empty_sequence_stay_finite(attend_dropped: str) -> None:
    method = make_method(f"model.attend_dropped={attend_dropped}", "model.max_len=4")
    batch = make_batch()
    # Audio absent from every sample, as a protocol leaves it: no positions, the complete mask kept aside.
    batch["audio"] = torch.zeros_like(batch["audio"])
    batch["audio_keep"] = torch.zeros_like(batch["audio_keep"])
    batch["audio_valid_full"], batch["audio_valid"] = batch["audio_valid"], batch["audio_keep"]
    batch["available"] = batch["available"].clone()
    batch["available"][:, 1] = False
    batch["vision_valid"] = batch["vision_valid"].clone()
    batch["vision_valid"][0] = False  # a sample with no vision step at all
    batch["vision_keep"] = batch["vision_keep"] & batch["vision_valid"]
    parts = method.training_loss(batch)
    parts["loss"].backward()
    assert all(torch.isfinite(v) for v in parts.values())
    assert all(torch.isfinite(p.grad).all() for p in method.parameters() if p.grad is not None)


def test_dropped_steps_are_removed_from_the_keys_only_when_asked() -> None:
    batch = missing_only(make_batch())
    for attend, expected in (
        ("true", batch["audio_valid"]),
        ("false", batch["audio_valid"] & batch["audio_keep"]),
    ):
        method = make_method(f"model.attend_dropped={attend}").eval()
        masks = []
        attention = method.network.encoders[1].layers[0].attention
        attention.register_forward_hook(lambda module, args, out, seen=masks: seen.append(args[2]))
        method(batch)
        assert torch.equal(masks[0], expected)


def test_padding_never_changes_the_prediction() -> None:
    method = make_method().eval()
    batch = missing_only(make_batch())
    padded, touched = dict(batch), dict(batch)
    for m in LENGTHS:
        padded[m] = torch.where(batch[f"{m}_valid"][..., None], batch[m], 7.0)
    touched["vision"] = batch["vision"] + batch["vision_valid"][..., None]  # a change on valid steps
    assert torch.allclose(method(batch), method(padded), atol=1e-6)
    assert not torch.allclose(method(batch), method(touched))  # the input is actually read


# ------------------------------------------------------------------ the complete view
def test_forward_never_reads_the_complete_view() -> None:
    method = make_method().eval()
    batch = make_batch()
    poisoned = {**batch, **{f"{m}_full": torch.full_like(batch[f"{m}_full"], float("nan")) for m in LENGTHS}}
    seen = []
    method.network.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    out = method(poisoned)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, method(missing_only(batch)))  # a test batch (no *_full keys) works
    assert all(torch.equal(seen[0][i], batch[m]) for i, m in enumerate(LENGTHS))


def test_test_step_runs_on_the_missing_view_only() -> None:
    method = make_method().eval()
    method.set_test_settings([Setting("intra", rate=0.3)])
    method.test_step(missing_only(make_batch()), 0)
    with pytest.raises(RuntimeError, match="complete view"):
        method.test_step(make_batch(), 0)


# ------------------------------------------------------------------ frozen parts and config
def test_frozen_bert_stays_frozen(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=120,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
    )
    transformers.BertModel(config).save_pretrained(tmp_path)
    method = make_method(
        "model.text_encoder=bert", f"model.bert_path={tmp_path}", "model.bert_finetune=false"
    )
    bert = method.network.text_encoder.bert
    batch = make_batch()
    batch["text_ids"] = torch.stack(
        [torch.randint(101, 120, (4, 6)), batch["text_valid"].long(), torch.zeros(4, 6, dtype=torch.long)],
        dim=1,
    )
    batch["text_ids_full"] = batch["text_ids"]
    before = {k: v.clone() for k, v in bert.state_dict().items()}
    method.train()
    assert not bert.training and not any(p.requires_grad for p in bert.parameters())
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=0.1)
    method.training_loss(batch)["loss"].backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in bert.state_dict().items())


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.coarse_summary=max", "coarse_summary"),
        ("model.dfim_anchor=words", "dfim_anchor"),
        ("model.num_heads=3", "divisible"),
        ("model.max_len=0", "max_len"),
    ],
)
def test_bad_options_are_one_line_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_method(override)


def test_paper_defaults() -> None:
    cfg = config_lib.compose("umdf", "mosi", "mosi")
    assert UMDFMethod.paper_policy == "stochastic" and cfg.method.paper_policy == "stochastic"
    assert (cfg.model.dim, cfg.model.num_heads, cfg.optim.lr, cfg.data.batch_size) == (40, 10, 1e-3, 128)
    assert cfg.model.max_len is None and cfg.selection.metric == "loss" and cfg.loss.regression == "mse"
    mosei = config_lib.compose("umdf", "mosei", "mosi")
    assert (mosei.model.num_heads, mosei.optim.lr, mosei.data.batch_size, mosei.trainer.max_epochs) == (
        8,
        2e-3,
        16,
        20,
    )
