"""DERL's network: token compression, hybrid (private + routed shared) experts, decoders, gated expert fusion.

Everything architectural is [proposed] (README, "What the paper states"; no code of the authors is
public); every choice is a constructor argument named as the config key that sets it.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from msabench.errors import ConfigError
from msabench.models.components.layers import MLP, MaskedFeatureNorm, gathers_cheaply, sinusoidal_positions
from msabench.models.components.text import TextEncoder
from msabench.models.derl.config import ModelConfig


class Encoded(NamedTuple):
    """What the three token compressors give for one view, in (text, audio, vision) order.

    Attributes:
        tokens: (B, 3, T, H) the T compressed tokens per modality (H_m).
        frames: per modality (B, L_m, H): the Transformer's frame outputs (``transformer``) or the positioned
            projected frames (``perceiver``).
        projected: per modality (B, L_m, H), the projected frames before any attention.
        text_features: (B, L_t, D_t) the text encoder's token features.
    """

    tokens: Tensor
    frames: tuple[Tensor, Tensor, Tensor]
    projected: tuple[Tensor, Tensor, Tensor]
    text_features: Tensor


class DERLOutput(NamedTuple):
    """A forward pass on one view.

    Attributes:
        prediction: (B, output_dim) the head's output.
        encoded: the compressors' output.
        private: (B, 3, T, H) private-expert features P_m.
        shared: (B, 3, T, H) routed shared-expert features S_m.
        router: (B, 3, K) dense router probabilities r_m (before any top-k).
        importance: (B, 6) fusion weights over (P_t, P_a, P_v, S_t, S_a, S_v).
    """

    prediction: Tensor
    encoded: Encoded
    private: Tensor
    shared: Tensor
    router: Tensor
    importance: Tensor


def attention(query: Tensor, key_value: Tensor, heads: int, attend: Tensor | None = None) -> Tensor:
    """Multi-head scaled dot-product attention of (B, S, H) queries over (B, S', 2H) packed keys and values.

    No dropout on the attention weights: with it PyTorch cannot use its fused kernels, the score matrix of a
    508-step sequence is materialised and a CPU step is about ten times slower (LNLN has none either).

    Args:
        query: (B, S, H) projected queries.
        key_value: (B, S', 2H) projected keys then values.
        heads: number of heads.
        attend: (B, S') True where a key may be attended to; None attends to all keys. A row with no key
            to attend to (a wholly absent modality) gets a zero output.
    """
    batch, length, hidden = query.shape
    q = query.view(batch, length, heads, hidden // heads).transpose(1, 2)
    k, v = key_value.view(batch, key_value.shape[1], 2, heads, hidden // heads).permute(2, 0, 3, 1, 4)
    if attend is None:
        out = F.scaled_dot_product_attention(q, k, v)
    else:
        # An all-False row would give NaN: let it attend everywhere, then zero what it read.
        some = attend.any(dim=1)
        mask = (attend | ~some[:, None])[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask) * some[:, None, None, None].to(q.dtype)
    return out.transpose(1, 2).reshape(batch, length, hidden)


class AttentionBlock(nn.Module):
    """Pre-norm attention and feed-forward block: self-attention, or cross-attention to a context."""

    def __init__(self, hidden: int, heads: int, ff_dim: int, dropout: float, cross: bool = False) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"encoder_heads ({heads}) must divide the hidden width ({hidden})")
        self.heads = heads
        self.norm = nn.LayerNorm(hidden)
        self.norm_context = nn.LayerNorm(hidden) if cross else None
        self.query = nn.Linear(hidden, hidden)
        self.key_value = nn.Linear(hidden, 2 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm_ff = nn.LayerNorm(hidden)
        self.ff = MLP(hidden, ff_dim, hidden, dropout, nn.GELU)
        self.dropout = nn.Dropout(dropout)

    def context_key_value(self, context: Tensor) -> Tensor:
        """Packed keys and values (..., 2H) of context features (..., H)."""
        return self.key_value((self.norm if self.norm_context is None else self.norm_context)(context))

    def forward(
        self,
        x: Tensor,
        attend: Tensor | None = None,
        context: Tensor | None = None,
        key_value: Tensor | None = None,
    ) -> Tensor:
        """Update (B, S, H) ``x`` from itself or from a context, attending where ``attend``.

        Args:
            x: the queries' sequence.
            attend: (B, S') True where a key may be attended to; None attends to every key.
            context: (B, S', H) the keys' sequence for cross-attention; None for self-attention.
            key_value: (B, S', 2H) precomputed :meth:`context_key_value`, instead of ``context``.
        """
        normed = self.norm(x)
        if key_value is None:
            key_value = self.key_value(normed) if context is None else self.context_key_value(context)
        attended = attention(self.query(normed), key_value, self.heads, attend)
        x = x + self.dropout(self.out(attended))
        return x + self.dropout(self.ff(self.norm_ff(x)))


class FrameReadout(nn.Module):
    """Frame-level features: each frame attends to its own sample's compressed tokens, and to nothing else."""

    def __init__(self, hidden: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.block = AttentionBlock(hidden, heads, ff_dim, dropout, cross=True)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, frames: Tensor, tokens: Tensor) -> Tensor:
        """(N, S, H) frames, each row reading its (N, T, H) tokens; returns (N, S, H).

        Frames are independent queries: a row can be one sample's S frames, or one selected frame (S = 1)
        with its sample's tokens.
        """
        return self.norm(self.block(frames, context=tokens))


class TokenCompressor(nn.Module):
    """Input normalisation, a Linear to the hidden width, then a compression of the frames to T tokens.

    ``input_norm``: ``frame`` (LayerNorm of each frame across its features) or ``feature`` (each feature
    standardised over the valid frames, :class:`MaskedFeatureNorm`). Raw audio and vision features span
    decades of scale, and a frame's LayerNorm keeps mostly its largest ones (README, "Without text").

    ``transformer`` (LNLN's "proj" extractor): the T tokens are prepended to the frames and a Transformer runs
    over the whole; the token outputs are the compressed modality, and the frame outputs, which see every
    frame's context, are the frame-level features. ``perceiver``: in each layer the tokens cross-attend to the
    frames, then to each other; frame-level features come from a :class:`FrameReadout`. Self-attention costs
    O(L^2) per modality and cross-attention O(T L): on 375/500-frame audio/vision the latter is much cheaper.

    Padding is excluded by key padding masks, and a row without any valid frame (a wholly absent modality)
    attends to no frame at all: its tokens are then a constant of the weights, whatever the length of the
    absent stream or of the other samples' streams, and stay finite. Frames after the batch's last valid step
    are returned as zeros.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        n_tokens: int,
        layers: int,
        heads: int,
        ff_dim: int,
        dropout: float,
        kind: str,
        input_norm: str,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.input_norm = nn.LayerNorm(in_dim) if input_norm == "frame" else MaskedFeatureNorm(in_dim)
        self.projection = nn.Linear(in_dim, hidden)
        self.tokens = nn.Parameter(torch.randn(1, n_tokens, hidden) * 0.02)
        cross = kind == "perceiver"
        self.layers = nn.ModuleList(
            AttentionBlock(hidden, heads, ff_dim, dropout, cross) for _ in range(layers)
        )
        self.token_layers = nn.ModuleList(
            AttentionBlock(hidden, heads, ff_dim, dropout) for _ in range(layers if cross else 0)
        )
        self.readout = FrameReadout(hidden, heads, ff_dim, dropout) if cross else None
        # A pre-norm stack leaves its residual stream unnormalised: the final LayerNorm sets the output scale.
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: Tensor, valid: Tensor, kept: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Compress (B, L, D) frames with their (B, L) valid mask.

        ``kept`` (B, L), the valid frames the protocol kept (None: all), is what a ``feature`` input norm
        takes its training statistics over; the frames themselves are read as they come, dropped ones zero.

        Returns:
            tokens (B, T, H); frames (B, L, H) (see :class:`Encoded`; zero beyond the batch's last valid
            step); projected frames (B, L, H).
        """
        valid = valid.bool()
        if isinstance(self.input_norm, MaskedFeatureNorm):
            projected = self.projection(self.input_norm(x, valid, kept))
        else:
            projected = self.projection(self.input_norm(x))
        batch, length, hidden = projected.shape
        # Steps up to the batch's last valid one, found on the device: trimming the rest would need its
        # index on the host (a synchronisation per step on a GPU). Masked keys contribute nothing either way.
        used = valid.any(dim=0).flip(0).cumsum(dim=0).flip(0) > 0
        used[0] = True  # a batch with no valid step keeps its first, as the trimmed form did
        frames = projected + sinusoidal_positions(length, hidden, device=x.device).to(projected.dtype)
        attend = valid
        tokens = self.tokens.expand(batch, -1, -1)
        n_tokens = tokens.shape[1]
        if self.kind == "transformer":
            sequence = torch.cat([tokens, frames], dim=1)
            attend = torch.cat([attend.new_ones(batch, n_tokens), attend], dim=1)
            for layer in self.layers:
                sequence = layer(sequence, attend)
            sequence = self.norm(sequence)
            tokens, frames = sequence[:, :n_tokens], sequence[:, n_tokens:]
        else:
            # Keys and values of every step, padding masked: packing the valid ones would save their
            # projection but give a data-dependent shape, a host synchronisation per step on a GPU.
            for cross, mix in zip(self.layers, self.token_layers, strict=True):
                key_value = cast(AttentionBlock, cross).context_key_value(frames)
                tokens = mix(cross(tokens, attend, key_value=key_value))
            tokens = self.norm(tokens)
        return tokens, torch.where(used[None, :, None], frames, 0), projected


class SharedExperts(nn.Module):
    """K token-wise MLP experts shared by all modalities, mixed per modality by that modality's router.

    Router m: r_m = softmax(W_m mean_t H_m) over the K experts. With ``top_k`` only the k largest weights are
    kept and renormalised; the dense probabilities are returned either way (the balance loss reads them).
    """

    def __init__(
        self, hidden: int, n_experts: int, dropout: float, top_k: int | None = None, n_modalities: int = 3
    ) -> None:
        super().__init__()
        if top_k is not None and not 1 <= top_k <= n_experts:
            raise ConfigError(f"model.router_top_k must be in [1, {n_experts}] or null (dense), not {top_k}")
        self.top_k = top_k
        self.experts = nn.ModuleList(MLP(hidden, hidden, hidden, dropout, nn.GELU) for _ in range(n_experts))
        self.routers = nn.ModuleList(nn.Linear(hidden, n_experts) for _ in range(n_modalities))

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Route (B, M, T, H) tokens: the shared features (B, M, T, H) and dense probabilities (B, M, K)."""
        pooled = tokens.mean(dim=2)
        logits = torch.stack([router(pooled[:, m]) for m, router in enumerate(self.routers)], dim=1)
        probs = logits.softmax(dim=-1)
        weights = probs
        if self.top_k is not None and self.top_k < probs.shape[-1]:
            top = probs.topk(self.top_k, dim=-1).indices
            kept = torch.zeros_like(probs).scatter(-1, top, 1.0) * probs
            weights = kept / kept.sum(dim=-1, keepdim=True)
        outputs = torch.stack([expert(tokens) for expert in self.experts], dim=2)  # (B, M, K, T, H)
        return torch.einsum("bmk,bmkth->bmth", weights, outputs), probs


class DERL(nn.Module):
    """Disentangled expert representation learning for MSA with missing modalities (README, the design).

    Args:
        model: the ``model`` block (``config.yaml``, typed and checked by ``config.py``): the common width
            (TF-Mamba's ``com_dim``), the compressors (tokens per modality, layers, heads, feed-forward
            width, ``transformer`` or ``perceiver``, ``frame`` or ``feature`` input normalisation), the shared
            experts and their router, the dropouts, what the low-level decoders read (``encoder``: frame
            features that see a dropped frame's context; ``projection``: the projected frame itself) and
            whether the pooled text-shared feature joins the fused one before the head.
        text_encoder: gives the text token features (stored BERT states or a local BERT on ``text_ids``).
        audio_dim: raw audio feature width.
        vision_dim: raw vision feature width.
        output_dim: 1 for regression, the number of classes for classification.
    """

    def __init__(
        self, model: ModelConfig, text_encoder: TextEncoder, audio_dim: int, vision_dim: int, output_dim: int
    ) -> None:
        super().__init__()
        hidden, dropout = model.hidden, model.dropout
        self.low_level_input = model.low_level_input
        self.fusion_text_shared = model.fusion_text_shared
        self.text_encoder = text_encoder
        raw_dims = (text_encoder.output_dim, audio_dim, vision_dim)
        self.compressors = nn.ModuleList(
            TokenCompressor(
                d,
                hidden,
                model.n_tokens,
                model.encoder_layers,
                model.encoder_heads,
                model.encoder_ff,
                dropout,
                model.compressor,
                model.input_norm,
            )
            for d in raw_dims
        )
        self.private_experts = nn.ModuleList(MLP(hidden, hidden, hidden, dropout, nn.GELU) for _ in raw_dims)
        self.shared_experts = SharedExperts(
            hidden, model.n_shared_experts, dropout, model.router_top_k, len(raw_dims)
        )
        self.low_decoders = nn.ModuleList(
            MLP(hidden, hidden, d, model.decoder_dropout, nn.ReLU) for d in raw_dims
        )
        self.high_decoder = MLP(2 * hidden, hidden, hidden, dropout, nn.GELU)
        n_experts = 2 * len(raw_dims)
        self.gate = MLP(n_experts * hidden, hidden, n_experts, 0.0, nn.GELU)
        head_in = 2 * hidden if model.fusion_text_shared else hidden
        self.head = nn.Sequential(nn.LayerNorm(head_in), MLP(head_in, hidden, output_dim, dropout, nn.GELU))

    def encode(
        self,
        text: Tensor,
        text_valid: Tensor,
        audio: Tensor,
        audio_valid: Tensor,
        vision: Tensor,
        vision_valid: Tensor,
        text_ids: Tensor | None = None,
        kept: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> Encoded:
        """Compress each modality of one view to T tokens, keeping its frame-level features.

        ``kept``: per modality, the valid steps the protocol kept (None: every valid step); only the input
        normalisation's statistics read it.
        """
        text_features = self.text_encoder(text, text_ids)
        inputs = ((text_features, text_valid), (audio, audio_valid), (vision, vision_valid))
        kept_steps = kept if kept is not None else (None, None, None)
        pairs = zip(self.compressors, inputs, kept_steps, strict=True)
        outputs = [compressor(x, valid, keep) for compressor, (x, valid), keep in pairs]
        tokens, frames, projected = zip(*outputs, strict=True)
        return Encoded(torch.stack(tokens, dim=1), frames, projected, text_features)  # type: ignore[arg-type]

    def forward(
        self,
        text: Tensor,
        text_valid: Tensor,
        audio: Tensor,
        audio_valid: Tensor,
        vision: Tensor,
        vision_valid: Tensor,
        text_ids: Tensor | None = None,
        kept: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> DERLOutput:
        """Predict from one (possibly incomplete) view; what the losses need comes along."""
        encoded = self.encode(
            text=text,
            text_valid=text_valid,
            audio=audio,
            audio_valid=audio_valid,
            vision=vision,
            vision_valid=vision_valid,
            text_ids=text_ids,
            kept=kept,
        )
        tokens = encoded.tokens
        private = torch.stack([expert(tokens[:, m]) for m, expert in enumerate(self.private_experts)], dim=1)
        shared, router = self.shared_experts(tokens)
        experts = torch.cat([private.mean(dim=2), shared.mean(dim=2)], dim=1)  # (B, 6, H)
        importance = self.gate(experts.flatten(1)).softmax(dim=-1)
        fused = torch.einsum("be,beh->bh", importance, experts)
        if self.fusion_text_shared:
            fused = torch.cat([fused, experts[:, 3]], dim=-1)
        return DERLOutput(self.head(fused), encoded, private, shared, router, importance)

    def reconstruct_low(
        self, encoded: Encoded, positions: tuple[Tensor, Tensor, Tensor], gather: bool | None = None
    ) -> list[Tensor]:
        """Low-level reconstruction of the raw features at the selected positions of each modality.

        Args:
            encoded: the missing view's compressor output.
            positions: per modality (B, L_m) bool, the steps to reconstruct (the dropped valid ones).
            gather: decode only the selected steps (True) or every step, keeping the selected ones (False);
                the same values either way. None: where :func:`gathers_cheaply` (the CPU), where it saves
                the decoding of the other steps (about 40 % of a synthetic training step); elsewhere the
                gather's data-dependent shape would make the host wait for the device every step.

        Returns:
            Per modality (B, L_m, d_m): the reconstruction at the selected steps, zero elsewhere.
        """
        out = []
        for m, decoder in enumerate(self.low_decoders):
            selected = positions[m]
            readout = None
            if self.low_level_input == "projection":
                features = encoded.projected[m]
            else:
                features = encoded.frames[m]
                readout = cast(TokenCompressor, self.compressors[m]).readout
            tokens = encoded.tokens[:, m]
            if gathers_cheaply(selected.device) if gather is None else gather:
                sample, step = selected.nonzero(as_tuple=True)
                picked = features[sample, step]
                if readout is not None:
                    picked = readout(picked[:, None], tokens[sample])[:, 0]
                decoded = decoder(picked)
                full = decoded.new_zeros((*selected.shape, decoded.shape[-1]))
                full[sample, step] = decoded
            else:
                if readout is not None:
                    features = readout(features, tokens)
                full = torch.where(selected.unsqueeze(-1), decoder(features), 0.0)
            out.append(full)
        return out

    def reconstruct_high(self, private: Tensor, shared: Tensor) -> Tensor:
        """High-level reconstruction: [P_m ; S_m] (B, 3, T, 2H) to the complete view's tokens (B, 3, T, H)."""
        return self.high_decoder(torch.cat([private, shared], dim=-1))
