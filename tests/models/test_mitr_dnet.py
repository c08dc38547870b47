"""MITR-DNet: its layers, each loss term on hand-checked cases, the teacher stage, what forward may see."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor

from msabench import config as config_lib
from msabench.errors import ConfigError
from msabench.models.components.layers import BatchNorm1d
from msabench.models.components.mult_transformer import MulTEncoder, future_mask, mult_positions
from msabench.models.mitr_dnet.losses import attraction_loss, distillation_losses
from msabench.models.mitr_dnet.module import (
    MITRDNetMethod,
    MITRDNetTeacher,
    network_inputs,
)
from msabench.models.mitr_dnet.network import Encoding
from msabench.models.mitr_dnet.timnet import TIMNet
from msabench.protocols.settings import Setting

LENGTHS = {"text": 6, "audio": 7, "vision": 9}
WIDTHS = {"text": 8, "audio": 3, "vision": 4}


def make_cfg(*overrides: str):
    return config_lib.compose(
        "mitr_dnet", "synthetic", "mosi", overrides=list(overrides), extra_blocks=("smoke",)
    )


def make_dims(task: str = "regression") -> SimpleNamespace:
    return SimpleNamespace(
        text_len=6,
        text_dim=8,
        audio_len=7,
        audio_dim=3,
        vision_len=9,
        vision_dim=4,
        has_text_ids=False,
        task=task,
        num_classes=4 if task == "classification" else None,
        metric_family="iemocap" if task == "classification" else "mosi",
    )


def make_batch(size: int = 4, rate: float = 0.4, seed: int = 0) -> dict[str, Tensor]:
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
    batch["label"] = torch.randn(size, generator=g)
    return batch


def missing_only(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in batch.items() if not k.endswith("_full")}


@pytest.fixture
def method() -> MITRDNetMethod:
    torch.manual_seed(0)
    return MITRDNetMethod(make_cfg(), make_dims())


# ------------------------------------------------------------------ MulT encoder
def test_mult_positions_follow_fairseq() -> None:
    x = torch.ones(1, 3, 5)
    x[0, 1, 0] = 0.0  # a zeroed (dropped or padded) step: no position
    table = mult_positions(x)[0]
    # D = 5: half = 2 frequencies 1 and 10000^(-1); layout [sin | cos], odd width -> a zero last column.
    expected_first = torch.tensor([math.sin(1), math.sin(1e-4), math.cos(1), math.cos(1e-4), 0.0])
    expected_third = torch.tensor([math.sin(3), math.sin(3e-4), math.cos(3), math.cos(3e-4), 0.0])
    torch.testing.assert_close(table[0], expected_first)
    torch.testing.assert_close(table[1], torch.zeros(5))
    torch.testing.assert_close(table[2], expected_third)


def test_future_mask_hides_later_steps() -> None:
    expected = torch.tensor([[False, True, True], [False, False, True], [False, False, False]])
    assert torch.equal(future_mask(3, 3, torch.device("cpu")), expected)


def test_causal_encoder_ignores_the_future() -> None:
    torch.manual_seed(0)
    encoder = MulTEncoder(4, num_heads=2, causal=True).eval()
    x = torch.randn(2, 5, 4)
    changed = x.clone()
    # Random, not constant: a constant shift of every feature is erased by the encoder's input LayerNorm.
    changed[:, 3:] += torch.randn_like(changed[:, 3:])
    torch.testing.assert_close(encoder(x)[:, :3], encoder(changed)[:, :3])
    assert not torch.allclose(encoder(x)[:, 3:], encoder(changed)[:, 3:])


# ------------------------------------------------------------------ TIMNET
@pytest.mark.parametrize("flip_axis", ["channel", "time"])
def test_timnet_shape(flip_axis: str) -> None:
    net = TIMNet(3, filters=5, dilations=(1, 2, 4), flip_axis=flip_axis)
    assert net(torch.randn(2, 11, 3)).shape == (2, 11, 15)


def test_timnet_channel_flip_is_a_weight_permutation() -> None:
    # Released quirk: the backward stream reverses channels. Swapping the two input units and reversing the
    # input's channels must then give the same output (blocks shared, streams summed).
    torch.manual_seed(0)
    net = TIMNet(3, filters=4, flip_axis="channel").eval()
    swapped = TIMNet(3, filters=4, flip_axis="channel").eval()
    swapped.load_state_dict(net.state_dict())
    swapped.forward_unit, swapped.backward_unit = swapped.backward_unit, swapped.forward_unit
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(net(x), swapped(torch.flip(x, dims=[2])))


@pytest.mark.parametrize(("flip_axis", "sees_future"), [("channel", False), ("time", True)])
def test_timnet_backward_stream_reaches_the_future_only_when_flipping_time(
    flip_axis: str, sees_future: bool
) -> None:
    torch.manual_seed(0)
    net = TIMNet(3, filters=4, flip_axis=flip_axis).eval()
    x = torch.randn(2, 8, 3)
    changed = x.clone()
    changed[:, -1] += 1.0
    first_step_moved = not torch.allclose(net(x)[:, 0], net(changed)[:, 0])
    assert first_step_moved == sees_future


def test_batchnorm_uses_running_statistics_for_a_single_training_sample() -> None:
    norm = BatchNorm1d(3).train()
    norm.running_mean.fill_(1.0)
    norm.running_var.fill_(4.0)
    out = norm(torch.tensor([[3.0, 1.0, -1.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0, -1.0]]), atol=1e-4, rtol=0)
    assert torch.equal(norm.running_mean, torch.ones(3))  # not updated


# ------------------------------------------------------------------ loss terms
def test_attraction_loss_hand_values() -> None:
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    # modality 0: both pairs aligned (-1); 1: one aligned, one orthogonal (-0.5); 2: both opposed (+1).
    p_missing = torch.stack([e1, e1, -e1]).unsqueeze(0)
    z_complete = torch.stack([2 * e1, e1, e1]).unsqueeze(0)
    p_complete = torch.stack([e2, e2, e2]).unsqueeze(0)
    z_missing = torch.stack([e2, e1, -e2]).unsqueeze(0)
    loss = attraction_loss(p_missing, z_complete, p_complete, z_missing)
    torch.testing.assert_close(loss, torch.tensor([-1.0, -0.5, 1.0]))


def test_attraction_loss_stops_gradient_through_projections() -> None:
    p = torch.randn(2, 3, 4, requires_grad=True)
    z = torch.randn(2, 3, 4, requires_grad=True)
    attraction_loss(p, z, p, z).sum().backward()
    assert p.grad is not None and z.grad is None


def _encoding(pooled: list[list[float]], fused: list[float]) -> Encoding:
    empty = torch.zeros(1)
    return Encoding(empty, (empty, empty, empty), torch.tensor([pooled]), torch.tensor([fused]), empty)


def test_distillation_losses_hand_values() -> None:
    student = _encoding([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], fused=[1.0, 0.0])
    teacher = _encoding([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], fused=[1.0, 1.0])
    losses = distillation_losses(student, teacher)
    # ts_tf: L1 to the teacher's F=[1,1]: 0.5 + 0.5 + 0; ts_mib: MSE to zeros: 0.5 + 0.5 + 1;
    # ss_tf: MSE to the student's F'=[1,0]: 0 + 1 + 0.5.
    torch.testing.assert_close(losses["kd_ts_tf"], torch.tensor(1.0))
    torch.testing.assert_close(losses["kd_ts_mib"], torch.tensor(2.0))
    torch.testing.assert_close(losses["kd_ss_tf"], torch.tensor(1.5))


def test_training_and_validation_losses_differ_by_the_kd_weights(method: MITRDNetMethod) -> None:
    method.eval()  # no dropout: both losses see the same passes
    batch = make_batch()
    with torch.no_grad():
        train, val = method.training_loss(batch), method.validation_loss(batch, method(missing_only(batch)))
    kd = train["kd_ts_tf"] + train["kd_ts_mib"] + train["kd_ss_tf"]
    torch.testing.assert_close(train["loss"] - val["loss"], (0.3 - 0.1) * kd)
    total = (
        train["pred_missing"]
        + train["pred_complete"]
        + train["attraction"]
        + train["reconstruction"]
        + 0.3 * kd
    )
    torch.testing.assert_close(train["loss"], total)


def test_reconstruction_counts_only_dropped_valid_positions(method: MITRDNetMethod) -> None:
    method.eval()
    batch = make_batch(rate=0.0)
    for m in LENGTHS:
        batch[f"{m}_keep"] = batch[f"{m}_valid"].clone()
    batch["text_keep"][:, 0] = False  # only [CLS] dropped: split off, so never reconstructed
    with torch.no_grad():
        assert float(method.training_loss(batch)["reconstruction"]) == 0.0

        batch["audio_keep"][0, 1] = False
        batch["audio"][0, 1] = 0.0
        base = float(method.training_loss(batch)["reconstruction"])
        assert base > 0.0
        kept = dict(batch, audio_full=batch["audio_full"].clone())
        kept["audio_full"][0, 0] += 5.0  # a kept step: not a reconstruction target
        assert float(method.training_loss(kept)["reconstruction"]) == pytest.approx(base)
        dropped = dict(batch, audio_full=batch["audio_full"].clone())
        dropped["audio_full"][0, 1] += 5.0  # the dropped step
        assert float(method.training_loss(dropped)["reconstruction"]) > base


def test_an_absent_modality_is_reconstructed_over_its_complete_steps(method: MITRDNetMethod) -> None:
    method.eval()
    batch = make_batch(rate=0.0)
    for m in LENGTHS:
        batch[f"{m}_keep"] = batch[f"{m}_valid"].clone()
    batch["text_keep"][:, 0] = False
    # Audio absent from sample 0, as a protocol leaves it: no positions, zero features, complete view kept.
    batch["audio_valid_full"] = batch["audio_valid"].clone()
    batch["audio_valid"][0] = batch["audio_keep"][0] = False
    batch["audio"][0] = 0.0
    batch["available"][0, 1] = False
    with torch.no_grad():
        base = float(method.training_loss(batch)["reconstruction"])
        assert base > 0.0
        changed = dict(batch, audio_full=batch["audio_full"].clone())
        changed["audio_full"][0, 0] += 5.0  # a step of the absent stream: a reconstruction target
        assert float(method.training_loss(changed)["reconstruction"]) > base


# ------------------------------------------------------------------ shapes, heads, what forward sees
def test_forward_shapes_regression_and_classification() -> None:
    batch = missing_only(make_batch())
    regression = MITRDNetMethod(make_cfg(), make_dims()).eval()
    classification = MITRDNetMethod(make_cfg(), make_dims("classification")).eval()
    assert regression(batch).shape == (4,)
    assert classification(batch).shape == (4, 4)
    parts = classification.training_loss(dict(make_batch(), label=torch.tensor([0, 1, 2, 3])))
    assert torch.isfinite(parts["loss"])


def test_forward_never_reads_the_complete_view(method: MITRDNetMethod) -> None:
    method.eval()
    batch = make_batch()
    poisoned = {k: (torch.full_like(v, float("nan")) if k.endswith("_full") else v) for k, v in batch.items()}
    with torch.no_grad():
        torch.testing.assert_close(method(missing_only(batch)), method(poisoned))
        method.set_test_settings([Setting("intra", rate=0.4)])
        method.test_step(missing_only(batch), 0)  # a test batch has no complete view and needs none
        assert method.test_metrics[0].compute()  # the batch reached the metrics


def test_training_step_with_a_single_sample(method: MITRDNetMethod) -> None:
    method.train()
    parts = method.training_loss(make_batch(size=1))
    assert torch.isfinite(parts["loss"])


def test_every_part_gets_gradient_in_shared_mode(method: MITRDNetMethod) -> None:
    method.train()
    method.training_loss(make_batch())["loss"].backward()
    without = [n for n, p in method.network.named_parameters() if p.requires_grad and p.grad is None]
    assert without == []


def test_text_width_maps_the_text_branch_and_keeps_its_reconstruction_target() -> None:
    torch.manual_seed(0)
    narrow = MITRDNetMethod(make_cfg("model.text_width=3"), make_dims())
    network = narrow.network
    assert network.text_projection.in_features == WIDTHS["text"] and network.text_projection.out_features == 3
    assert network.self_attention[0].layers[0].fc1.in_features == 3  # the text self-attention reads the map
    assert network.reconstruction[0].out_features == WIDTHS["text"]  # ... and reconstructs BERT's states
    narrow.train()
    narrow.training_loss(make_batch())["loss"].backward()
    assert network.text_projection.weight.grad is not None
    released = MITRDNetMethod(make_cfg(), make_dims()).network
    assert isinstance(released.text_projection, torch.nn.Identity)  # the default adds no parameter


def test_max_len_windows_each_long_modality_and_reconstructs_every_step() -> None:
    torch.manual_seed(0)
    method = MITRDNetMethod(make_cfg("model.max_len=3"), make_dims())
    network = method.network
    assert network.strides == (2, 3, 3)  # text without [CLS] 5 steps, audio 7, vision 9
    batch = make_batch()
    encoding = network.encode(**network_inputs(missing_only(batch)))
    assert [s.shape[1] for s in encoding.sequences] == [3, 3, 3]
    lengths = (LENGTHS["text"] - 1, LENGTHS["audio"], LENGTHS["vision"])
    rebuilt = network.reconstruct(encoding.sequences, lengths)
    assert [r.shape[1:] for r in rebuilt] == [(n, WIDTHS[m]) for n, m in zip(lengths, WIDTHS, strict=True)]
    torch.testing.assert_close(rebuilt[1][:, 0], rebuilt[1][:, 2])  # the steps of one window share it
    method.train()
    method.training_loss(batch)["loss"].backward()
    assert [n for n, p in network.named_parameters() if p.requires_grad and p.grad is None] == []
    released = MITRDNetMethod(make_cfg(), make_dims()).network
    assert released.strides == (1, 1, 1)


# ------------------------------------------------------------------ stages and the separate teacher
def test_stages() -> None:
    assert [s.name for s in MITRDNetMethod.stages(make_cfg())] == ["main"]
    teacher, student = MITRDNetMethod.stages(make_cfg("model.separate_teacher=true"))
    assert (teacher.name, teacher.module, teacher.policy, teacher.validation) == (
        "teacher",
        MITRDNetTeacher,
        "complete",
        "complete",
    )
    assert (student.name, student.module) == ("student", MITRDNetMethod)


def test_separate_teacher_is_frozen() -> None:
    torch.manual_seed(0)
    cfg = make_cfg("model.separate_teacher=true")
    teacher_stage = MITRDNetTeacher(cfg, make_dims())
    student = MITRDNetMethod(cfg, make_dims(), previous=teacher_stage)
    assert student.teacher is not None and student.teacher is not teacher_stage.network
    before = {k: v.clone() for k, v in student.teacher.state_dict().items()}
    student_before = [p.detach().clone() for p in student.network.parameters()]
    student.train()
    assert not student.teacher.training
    assert all(not p.requires_grad for p in student.teacher.parameters())
    optimizer = torch.optim.Adam(student.parameter_groups())
    parts = student.training_loss(make_batch())
    parts["loss"].backward()
    optimizer.step()
    assert all(p.grad is None for p in student.teacher.parameters())
    for key, value in student.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key  # BatchNorm statistics included
    assert any(
        not torch.equal(a, b) for a, b in zip(student_before, student.network.parameters(), strict=True)
    )


def test_separate_teacher_without_its_stage_is_an_error() -> None:
    student = MITRDNetMethod(make_cfg("model.separate_teacher=true"), make_dims())
    with pytest.raises(ConfigError, match="teacher stage"):
        student.training_loss(make_batch())


def test_teacher_stage_trains_on_the_complete_view() -> None:
    torch.manual_seed(0)
    teacher = MITRDNetTeacher(make_cfg("model.separate_teacher=true"), make_dims()).eval()
    batch = make_batch()
    expected = teacher.task_loss(
        teacher(dict(batch, text=batch["text_full"], audio=batch["audio_full"], vision=batch["vision_full"])),
        batch["label"],
    )
    torch.testing.assert_close(teacher.training_loss(batch)["loss"], expected)


# ------------------------------------------------------------------ optimisation and config
def test_parameter_groups(method: MITRDNetMethod) -> None:
    groups = method.parameter_groups()
    audio, vision, other = groups  # no BERT with stored features
    assert {id(p) for p in audio["params"]} == {id(p) for p in method.network.timnet_audio.parameters()}
    assert {id(p) for p in vision["params"]} == {id(p) for p in method.network.timnet_vision.parameters()}
    # MOSI values; weight decays divided by the 4 accumulated batches (released code sums their gradients).
    assert (audio["lr"], vision["lr"], other["lr"]) == (1e-3, 1e-4, 1e-3)
    assert audio["weight_decay"] == pytest.approx(1e-2 / 4)
    assert vision["weight_decay"] == pytest.approx(1e-3 / 4)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == sum(1 for p in method.parameters() if p.requires_grad)


def test_config_declares_the_released_trainer_needs() -> None:
    cfg = config_lib.compose("mitr_dnet", "mosi", "mosi")
    assert cfg.trainer.accumulate_grad_batches == 4
    assert (cfg.trainer.patience, cfg.trainer.max_epochs, cfg.data.batch_size) == (8, 200, 32)
    assert (cfg.loss.kd_weight, cfg.loss.val_kd_weight) == (0.3, 0.1)
    assert (cfg.selection.metric, cfg.selection.mode, cfg.method.paper_policy) == ("loss", "min", "matched")
    assert MITRDNetMethod.validation_uses_complete_view


def test_fusion_heads_must_divide_the_width() -> None:
    with pytest.raises(ConfigError, match="fusion_heads"):
        MITRDNetMethod(make_cfg("model.fusion_heads=3"), make_dims())
