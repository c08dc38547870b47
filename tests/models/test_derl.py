"""DERL: its loss terms on hand-checkable cases, shapes, masks, and what the complete view may reach."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import Tensor
from torch.nn import functional as F

from msabench.config import compose
from msabench.core.batch import MODALITIES
from msabench.datamodules.base import DataDims
from msabench.errors import ConfigError
from msabench.models import get
from msabench.models.components.losses import masked_reconstruction_loss
from msabench.models.derl.losses import orthogonality_loss, router_balance_loss, shared_alignment_loss
from msabench.models.derl.module import DERLMethod
from msabench.models.derl.network import SharedExperts, TokenCompressor
from msabench.protocols import Setting

DIMS = DataDims(
    text_len=7,
    text_dim=12,
    audio_len=11,
    audio_dim=3,
    vision_len=9,
    vision_dim=4,
    has_text_ids=False,
    task="regression",
    num_classes=None,
    metric_family="mosi",
)
CLASSIFICATION = replace(DIMS, task="classification", num_classes=4, metric_family="iemocap")
NO_DROPOUT = ("model.dropout=0", "model.decoder_dropout=0")

# Token-pooled features, batch 4 and width 2, already centred with unit rows: A spans both axes; ORTH is the
# only direction orthogonal (over the batch) to both columns of A: diff(A, ORTH) = 0; diff(A, A) = 8 / 4 = 2.
A = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
ORTH = torch.tensor([[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]]) / 2**0.5


def method(*overrides: str, dims: DataDims = DIMS, compressor: str = "perceiver") -> DERLMethod:
    cfg = compose(
        "derl",
        "synthetic",
        dims.metric_family,
        overrides=[f"model.compressor={compressor}", *overrides],
        extra_blocks=("smoke",),
    )
    torch.manual_seed(0)
    return get("derl")(cfg, dims)  # type: ignore[return-value]


def make_batch(
    dims: DataDims = DIMS,
    size: int = 6,
    rate: float = 0.5,
    seed: int = 0,
    complete: bool = True,
    fill: float | None = None,
) -> dict[str, Tensor]:
    """A protocol-shaped batch: valid prefixes, every modality with dropped and kept valid steps."""
    gen = torch.Generator().manual_seed(seed)
    batch: dict[str, Tensor] = {}
    for m, length, dim in (
        ("text", dims.text_len, dims.text_dim),
        ("audio", dims.audio_len, dims.audio_dim),
        ("vision", dims.vision_len, dims.vision_dim),
    ):
        lengths = torch.randint(3, length + 1, (size,), generator=gen)
        valid = torch.arange(length)[None] < lengths[:, None]
        full = (
            torch.randn(size, length, dim, generator=gen)
            if fill is None
            else torch.full((size, length, dim), fill)
        )
        full = full * valid[..., None]
        keep = valid & (torch.rand(size, length, generator=gen) >= rate)
        keep[:, 0], keep[:, 1] = True, False  # at least one kept and one dropped valid step per row
        batch[m], batch[f"{m}_valid"], batch[f"{m}_keep"] = full * keep[..., None], valid, keep
        if complete:
            batch[f"{m}_full"] = full
    batch["available"] = torch.ones(size, 3, dtype=torch.bool)
    if dims.task == "classification":
        batch["label"] = torch.randint(0, int(dims.num_classes or 2), (size,), generator=gen)
    else:
        batch["label"] = torch.rand(size, generator=gen) * 6 - 3
    batch["index"] = torch.arange(size)
    return batch


def missing(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in batch.items() if not k.endswith("_full")}


# ---------------------------------------------------------------------------------------------- loss terms
def test_orthogonality_loss_counts_private_shared_and_private_pairs() -> None:
    private = torch.stack([A, A, A], dim=1)  # (B, 3, H)
    assert float(orthogonality_loss(private, torch.stack([ORTH, ORTH, ORTH], dim=1))) == pytest.approx(
        3 * 2.0
    )
    assert float(orthogonality_loss(private, private)) == pytest.approx(3 * 2.0 + 3 * 2.0)
    # every private ⟂ its shared; of the private pairs only (ORTH, ORTH) is not: ||ORTH^T ORTH||^2 / 2^2 = 4
    mixed = torch.stack([A, ORTH, ORTH], dim=1)
    assert float(orthogonality_loss(mixed, torch.stack([ORTH, A, A], dim=1))) == pytest.approx(16 / 4)


def test_shared_alignment_is_the_mean_cmd_over_pairs() -> None:
    s = torch.randn(5, 2)
    shift = torch.tensor([3.0, 4.0])  # a shift moves only the means: CMD = ||shift|| = 5
    shared = torch.stack([s, s, s + shift], dim=1)
    assert float(shared_alignment_loss(shared)) == pytest.approx((0.0 + 5.0 + 5.0) / 3, rel=1e-5)


def test_router_balance_is_the_squared_coefficient_of_variation() -> None:
    collapsed = torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(3, 2, 4)
    # importance (1, 0, 0, 0): mean 1/4, population variance 3/16, CV^2 = 3
    assert float(router_balance_loss(collapsed)) == pytest.approx(3.0)
    balanced_on_average = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # each sample picks one, but evenly
    assert float(router_balance_loss(balanced_on_average)) == pytest.approx(0.0)


def test_low_level_reconstruction_hand_value_and_only_dropped_steps() -> None:
    module = method(*NO_DROPOUT, "loss.rec_low_scale=raw")
    for decoder in module.network.low_decoders:  # the decoders predict 0 everywhere
        torch.nn.init.zeros_(decoder[-1].weight)
        torch.nn.init.zeros_(decoder[-1].bias)
    batch = make_batch(fill=2.0)  # complete view 2.0 at every valid step: SmoothL1(0, 2) = 1.5
    assert module.training_loss(batch)["rec_low"].item() == pytest.approx(1.5)
    kept_changed = dict(batch)
    for m in ("text", "audio", "vision"):  # what the missing view still holds is no target
        kept_changed[f"{m}_full"] = torch.where(batch[f"{m}_keep"][..., None], 50.0, batch[f"{m}_full"])
        kept_changed[m] = torch.where(batch[f"{m}_keep"][..., None], 50.0, batch[m])
    assert module.training_loss(kept_changed)["rec_low"].item() == pytest.approx(1.5)


def test_low_level_reconstruction_is_scale_free_per_modality_by_default() -> None:
    module = method(*NO_DROPOUT)
    for decoder in module.network.low_decoders:  # the decoders predict 0 everywhere
        torch.nn.init.zeros_(decoder[-1].weight)
        torch.nn.init.zeros_(decoder[-1].bias)
    batch = make_batch()
    parts = module.training_loss(batch)
    loud = dict(batch, audio=batch["audio"] * 1000.0, audio_full=batch["audio_full"] * 1000.0)
    loud_parts = module.training_loss(loud)
    # audio 1000 times louder (MOSI's COVAREP against BERT states): its term, and the total, do not move
    assert loud_parts["rec_low_audio"].item() == pytest.approx(parts["rec_low_audio"].item(), rel=1e-4)
    assert loud_parts["rec_low"].item() == pytest.approx(parts["rec_low"].item(), rel=1e-4)
    # the term is the raw loss in units of the target's spread over the complete view's valid steps
    valid = batch["audio_valid"]
    target = batch["audio_full"][valid]
    sigma = target.var(dim=0, unbiased=False).mean().sqrt()
    dropped = valid & ~batch["audio_keep"]
    expected = masked_reconstruction_loss(
        torch.zeros_like(batch["audio_full"]), batch["audio_full"] / sigma, dropped
    )
    assert parts["rec_low_audio"].item() == pytest.approx(expected.item(), rel=1e-5)
    raw = method(*NO_DROPOUT, "loss.rec_low_scale=raw")
    for decoder in raw.network.low_decoders:
        torch.nn.init.zeros_(decoder[-1].weight)
        torch.nn.init.zeros_(decoder[-1].bias)
    assert (
        raw.training_loss(loud)["rec_low_audio"].item()
        > 100 * raw.training_loss(batch)["rec_low_audio"].item()
    )


def test_unknown_reconstruction_scale_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="loss.rec_low_scale must be one of target_std, raw, not 'std'"):
        method("loss.rec_low_scale=std")


def test_unknown_input_normalisation_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model.input_norm must be one of frame, feature, not 'batch'"):
        method("model.input_norm=batch")


@pytest.mark.parametrize("kind", ["transformer", "perceiver"])
def test_feature_normalisation_makes_the_compressor_blind_to_each_features_scale(kind: str) -> None:
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(6, 10, 4, generator=generator)
    valid = torch.rand(6, 10, generator=generator) < 0.8
    valid[:, 0] = True
    rescaled = x * torch.tensor([1e-3, 1.0, 30.0, 1e3]) + torch.tensor([5.0, -2.0, 0.0, 1e3])
    outputs = {}
    for input_norm in ("frame", "feature"):
        torch.manual_seed(6)
        compressor = TokenCompressor(4, 16, 2, 1, 2, 32, 0.0, kind, input_norm)
        with torch.no_grad():
            outputs[input_norm] = [compressor(inputs, valid)[0] for inputs in (x, rescaled)]
    torch.testing.assert_close(outputs["feature"][1], outputs["feature"][0], rtol=1e-3, atol=1e-3)
    assert (outputs["frame"][1] - outputs["frame"][0]).abs().max() > 0.1  # a frame's LayerNorm is not


def test_high_level_reconstruction_targets_the_complete_views_tokens() -> None:
    module = method(*NO_DROPOUT)
    torch.nn.init.zeros_(module.network.high_decoder[-1].weight)
    torch.nn.init.zeros_(module.network.high_decoder[-1].bias)
    batch = make_batch()
    full = {m: batch[f"{m}_full"] for m in ("text", "audio", "vision")}
    target = module.network.encode(
        full["text"],
        batch["text_valid"],
        full["audio"],
        batch["audio_valid"],
        full["vision"],
        batch["vision_valid"],
    ).tokens
    assert module.training_loss(batch)["rec_high"].item() == pytest.approx(
        target.pow(2).mean().item(), rel=1e-5
    )


def test_total_loss_is_the_weighted_sum_of_its_parts() -> None:
    module = method(
        *NO_DROPOUT,
        "loss.lambda_orth=0.5",
        "loss.lambda_sim=0.25",
        "loss.lambda_rec_low=2",
        "loss.lambda_rec_high=3",
        "loss.lambda_balance=4",
    )
    parts = module.training_loss(make_batch())
    expected = (
        parts["task"]
        + 0.5 * parts["orth"]
        + 0.25 * parts["sim"]
        + 2 * parts["rec_low"]
        + 3 * parts["rec_high"]
        + 4 * parts["balance"]
    )
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    batch = make_batch()
    assert parts["task"].item() == pytest.approx(
        F.mse_loss(module(missing(batch)), batch["label"]).item(), rel=1e-5
    )


@pytest.mark.parametrize("compressor", ["transformer", "perceiver"])
def test_nothing_dropped_gives_a_zero_low_level_term(compressor: str) -> None:
    batch = make_batch()
    for m in (
        "text",
        "audio",
        "vision",
    ):  # the `complete` training policy: the missing view is the complete one
        batch[f"{m}_keep"], batch[m] = batch[f"{m}_valid"].clone(), batch[f"{m}_full"]
    parts = method(compressor=compressor).training_loss(batch)
    assert parts["rec_low"].item() == 0.0 and torch.isfinite(parts["loss"])


def test_without_a_complete_view_only_the_missing_view_terms_remain() -> None:
    parts = method().training_loss(make_batch(complete=False))
    assert {"task", "orth", "sim", "balance", "loss"} == set(parts)


# ---------------------------------------------------------------------------------------------- network
@pytest.mark.parametrize("compressor", ["transformer", "perceiver"])
def test_shapes_and_normalised_weights(compressor: str) -> None:
    module = method(compressor=compressor)
    batch = make_batch(size=5)
    out = module._run(batch)
    hidden, tokens, experts = 16, 2, 2  # the smoke block's widths
    assert module(batch).shape == (5,)
    assert out.private.shape == out.shared.shape == out.encoded.tokens.shape == (5, 3, tokens, hidden)
    assert out.router.shape == (5, 3, experts)
    assert torch.allclose(out.router.sum(-1), torch.ones(5, 3))
    assert torch.allclose(out.importance.sum(-1), torch.ones(5))
    rebuilt = module.network.reconstruct_low(
        out.encoded, tuple(batch[f"{m}_valid"] & ~batch[f"{m}_keep"] for m in ("text", "audio", "vision"))
    )
    assert [r.shape for r in rebuilt] == [batch[f"{m}_full"].shape for m in ("text", "audio", "vision")]
    for r, m in zip(rebuilt, ("text", "audio", "vision"), strict=True):
        assert (r[batch[f"{m}_keep"]] == 0).all()  # only the requested (dropped) steps are decoded


def test_classification_head() -> None:
    module = method(*NO_DROPOUT, dims=CLASSIFICATION)
    batch = make_batch(CLASSIFICATION)
    assert module(missing(batch)).shape == (6, 4)
    parts = module.training_loss(batch)
    assert parts["task"].item() == pytest.approx(
        F.cross_entropy(module(batch), batch["label"]).item(), rel=1e-5
    )


def test_top_k_routing_keeps_the_k_largest_experts() -> None:
    torch.manual_seed(0)
    experts = SharedExperts(hidden=8, n_experts=3, dropout=0.0, top_k=1).eval()
    tokens = torch.randn(4, 3, 2, 8)
    shared, probs = experts(tokens)
    best = probs.argmax(dim=-1)
    outputs = torch.stack([e(tokens) for e in experts.experts], dim=2)  # (B, M, K, T, H)
    chosen = outputs.gather(2, best[:, :, None, None, None].expand(-1, -1, 1, 2, 8))[:, :, 0]
    assert torch.allclose(shared, chosen, atol=1e-6)
    with pytest.raises(ValueError, match="router_top_k"):
        SharedExperts(hidden=8, n_experts=3, dropout=0.0, top_k=4)


@pytest.mark.parametrize("compressor", ["transformer", "perceiver"])
def test_padding_is_never_attended(compressor: str) -> None:
    module = method(compressor=compressor).eval()
    batch = missing(make_batch())
    noisy, longer = dict(batch), dict(batch)
    for m in ("text", "audio", "vision"):
        pad = ~batch[f"{m}_valid"]
        noisy[m] = torch.where(pad[..., None], torch.randn_like(batch[m]) * 100, batch[m])
        longer[m] = F.pad(batch[m], (0, 0, 0, 5))  # five more padding steps
        longer[f"{m}_valid"] = F.pad(batch[f"{m}_valid"], (0, 5))
    with torch.no_grad():
        reference = module(batch)
        assert torch.allclose(module(noisy), reference, atol=1e-5)
        assert torch.allclose(module(longer), reference, atol=1e-5)


def make_absent(batch: dict[str, Tensor], modality: str, rows: Tensor) -> dict[str, Tensor]:
    """``modality`` wholly absent from the samples ``rows``, as a protocol leaves it: no positions at all."""
    out = dict(batch)
    out[f"{modality}_valid_full"] = batch[f"{modality}_valid"]
    gone = rows[:, None]
    out[f"{modality}_valid"] = batch[f"{modality}_valid"] & ~gone
    out[f"{modality}_keep"] = batch[f"{modality}_keep"] & ~gone
    out[modality] = batch[modality] * ~gone[..., None]
    out["available"] = batch["available"].clone()
    out["available"][:, MODALITIES.index(modality)] &= ~rows
    return out


@pytest.mark.parametrize("compressor", ["transformer", "perceiver"])
def test_an_absent_modality_is_a_constant_whatever_the_batch(compressor: str) -> None:
    module = method(compressor=compressor).eval()
    rows = torch.tensor([True, False, False, True, False, False])
    batch = missing(make_absent(make_batch(), "audio", rows))
    other = dict(batch, audio_valid=batch["audio_valid"].clone())
    other["audio_valid"][~rows] = True  # the samples that have audio now have it over the whole padded length
    with torch.no_grad():
        full = module(batch)
        assert torch.isfinite(full).all()
        alone = torch.cat([module({k: v[i : i + 1] for k, v in batch.items()}) for i in range(len(full))])
        torch.testing.assert_close(alone, full, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(module(other)[rows], full[rows], atol=1e-5, rtol=1e-4)


def test_low_level_reconstruction_covers_an_absent_modality() -> None:
    module = method(*NO_DROPOUT, "loss.rec_low_scale=raw")
    for decoder in module.network.low_decoders:
        torch.nn.init.zeros_(decoder[-1].weight)
        torch.nn.init.zeros_(decoder[-1].bias)
    rows = torch.tensor([True, False, False, False, False, False])
    batch = make_absent(make_batch(fill=2.0), "vision", rows)
    # Every step is 2.0 and the decoders predict 0: SmoothL1 1.5 wherever the target reaches.
    assert module.training_loss(batch)["rec_low"].item() == pytest.approx(1.5)
    changed = dict(batch, vision_full=batch["vision_full"].clone())
    changed["vision_full"][0] *= 3.0  # the absent stream: 6.0 at its complete steps
    assert module.training_loss(changed)["rec_low"].item() > 1.5


@pytest.mark.parametrize("compressor", ["transformer", "perceiver"])
def test_wholly_missing_and_empty_modalities_stay_finite(compressor: str) -> None:
    module = method(compressor=compressor)
    batch = make_absent(make_batch(), "audio", torch.ones(6, dtype=torch.bool))  # the condition `tv`
    batch["vision_valid"][0] = False  # a sample with no vision step at all
    batch["vision_keep"][0] = False
    batch["vision"][0] = 0.0
    parts = module.training_loss(batch)
    assert all(torch.isfinite(v) for v in parts.values())
    parts["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)
    with torch.no_grad():
        assert torch.isfinite(module.eval()(missing(batch))).all()


# ------------------------------------------------------------------------------------------ the complete view
def test_forward_reads_only_the_missing_view() -> None:
    module = method().eval()
    batch = make_batch()
    poisoned = {k: (torch.full_like(v, float("nan")) if k.endswith("_full") else v) for k, v in batch.items()}
    with torch.no_grad():
        assert torch.equal(module(poisoned), module(missing(batch)))


def test_complete_view_is_encoded_without_gradients_and_never_at_test_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = method()
    calls: list[tuple[bool, Tensor]] = []
    encode = module.network.encode

    def spy(**inputs: object) -> object:
        calls.append((torch.is_grad_enabled(), inputs["text"]))  # type: ignore[arg-type]
        return encode(**inputs)  # type: ignore[arg-type]

    monkeypatch.setattr(module.network, "encode", spy)
    batch = make_batch()
    module.training_loss(batch)
    assert [grad for grad, _ in calls] == [True, False]
    assert calls[0][1] is batch["text"] and calls[1][1] is batch["text_full"]

    calls.clear()
    module.set_test_settings([Setting("intra", rate=0.5)])
    test_batch = missing(batch)
    module.test_step(test_batch, 0)
    assert len(calls) == 1 and calls[0][1] is test_batch["text"]


def test_input_statistics_come_from_the_missing_views_kept_frames_only() -> None:
    """The complete-view target pass and zeroed frames leave the test-time statistics alone."""
    module = method().train()
    batch = make_batch(rate=0.6)
    module.training_loss(batch)
    for m, compressor in zip(MODALITIES, module.network.compressors, strict=True):
        norm = compressor.input_norm
        kept = batch[f"{m}_keep"]
        features = batch[m] if m != "text" else module.network.text_encoder(batch["text"], None)
        momentum = norm.momentum
        torch.testing.assert_close(norm.running_mean, momentum * features[kept].mean(dim=0))
        expected_var = (1 - momentum) + momentum * features[kept].var(dim=0, unbiased=True)
        torch.testing.assert_close(norm.running_var, expected_var)


def test_no_complete_pass_when_no_term_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    module = method("loss.lambda_rec_high=0")
    calls: list[Tensor] = []
    encode = module.network.encode
    monkeypatch.setattr(module.network, "encode", lambda **a: calls.append(a["text"]) or encode(**a))
    parts = module.training_loss(make_batch())
    assert len(calls) == 1 and "rec_high" not in parts and "rec_low" in parts


# ---------------------------------------------------------------------------------------------- BERT regime
@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("tiny-bert")
    config = transformers.BertConfig(
        vocab_size=200,
        hidden_size=12,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(path)
    return path


def bert_batch(size: int = 4) -> dict[str, Tensor]:
    batch = make_batch(size=size)
    valid = batch["text_valid"]
    ids = torch.randint(101, 200, valid.shape) * valid
    unk = torch.where(valid & ~batch["text_keep"], 100, ids)
    batch["text_ids_full"] = torch.stack([ids, valid.long(), torch.zeros_like(ids)], dim=1)
    batch["text_ids"] = torch.stack([unk, valid.long(), torch.zeros_like(ids)], dim=1)
    return batch


def test_frozen_bert_stays_frozen_and_in_eval_mode(tiny_bert: Path) -> None:
    module = method("model.text_encoder=bert", f"model.bert_path={tiny_bert}", "model.bert_finetune=false")
    bert = module.network.text_encoder.bert
    assert bert is not None
    before = {k: v.clone() for k, v in bert.state_dict().items()}
    module.train()
    assert not bert.training and not any(p.requires_grad for p in bert.parameters())
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=0.1)
    module.training_loss(bert_batch())["loss"].backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in bert.state_dict().items())


def test_finetuned_bert_complete_pass_has_no_gradient_and_is_the_text_target(tiny_bert: Path) -> None:
    module = method(
        "model.text_encoder=bert", f"model.bert_path={tiny_bert}", "loss.rec_low_scale=raw", *NO_DROPOUT
    )
    bert = module.network.text_encoder.bert
    grad_enabled: list[bool] = []
    bert.register_forward_hook(lambda *_: grad_enabled.append(torch.is_grad_enabled()))
    for decoder in module.network.low_decoders:
        torch.nn.init.zeros_(decoder[-1].weight)
        torch.nn.init.zeros_(decoder[-1].bias)
    batch = bert_batch()
    parts = module.training_loss(batch)
    assert grad_enabled == [True, False]  # missing view fine-tuned, complete view a target
    dropped = [batch[f"{m}_valid"] & ~batch[f"{m}_keep"] for m in ("text", "audio", "vision")]
    with torch.no_grad():
        states = bert(
            input_ids=batch["text_ids_full"][:, 0],
            attention_mask=batch["text_ids_full"][:, 1],
            token_type_ids=batch["text_ids_full"][:, 2],
        ).last_hidden_state
    targets = [states, batch["audio_full"], batch["vision_full"]]
    expected = (
        sum(
            masked_reconstruction_loss(torch.zeros_like(t), t, d)
            for t, d in zip(targets, dropped, strict=True)
        )
        / 3
    )
    assert parts["rec_low"].item() == pytest.approx(float(expected), rel=1e-5)


# ---------------------------------------------------------------------------------------------- config
def test_paper_recipe_and_policy() -> None:
    cfg = compose("derl", "mosi", "mosi")
    assert get("derl").paper_policy == "lnln" == cfg.method.paper_policy
    assert (cfg.selection.metric, cfg.selection.mode, cfg.trainer.patience) == ("acc2_non0", "max", 30)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.scheduler.name) == (
        "adamw",
        1e-4,
        1e-4,
        "warmup_cosine",
    )
    assert (cfg.model.compressor, cfg.model.n_shared_experts, cfg.loss.lambda_rec_low) == (
        "transformer",
        4,
        0.7,
    )
    assert compose("derl", "mosei", "mosi").loss.lambda_rec_low == 0.3
    assert compose("derl", "sims", "sims").selection.metric == "acc2"
    assert compose("derl", "iemocap", "iemocap").selection.metric == "ua"
