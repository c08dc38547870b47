"""Blocks shared by MMIN and IF-MMIN (its extension): encoders, the residual autoencoder, the classifier.

One implementation serves both methods (models/mmin/README.md and models/if_mmin/README.md, "What it does"):

- :class:`LSTMMaxPoolEncoder` (audio, vision) and :class:`TextCNN` (text): the unimodal utterance encoders;
- :class:`UnimodalEncoders`: the base of every MMIN/IF-MMIN network, holding the three encoders as *top-level*
  children (the authors clip gradients per sub-network, and ``optim.clip_norm_per_submodule`` clips each
  top-level child of the network) and embedding the modalities in MMIN's order **(audio, text, vision)**;
- :class:`ResidualAE`: the cascaded residual autoencoder, with MMIN's recurrence and IF-MMIN's two (IF-IM);
- :class:`MLPClassifier`: MMIN's ``FcClassifier`` (Linear, ReLU, Dropout per hidden layer, then Linear);
- :class:`EncoderInputs` and the views a training step feeds the encoders: the missing view, the complete view
  and MMIN's *reverse* view (only what is missing), which the frozen teacher embeds as the imagination target.

The batch is ordered (text, audio, vision); MMIN concatenates (audio, text, vision). The order is fixed here,
in :data:`FUSION_ORDER`, so that embeddings, invariant features and teacher targets always line up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from msabench.core.batch import Batch, complete_view, dropped_steps
from msabench.errors import ConfigError
from msabench.models.components.imagination_config import ImaginationModelConfig
from msabench.models.components.text import TextEncoder, TextEncoderName

FUSION_ORDER: Final[tuple[str, str, str]] = ("audio", "text", "vision")
"""MMIN's concatenation order h = [h_a, h_l, h_v] (the batch's own order is text, audio, vision)."""

Recurrence = Literal["mmin", "if_mmin", "if_mmin_2022"]
ReverseMode = Literal["modality", "complement"]


def text_source(
    encoder: TextEncoderName, feature_dim: int, bert_path: str | None, finetune: bool
) -> TextEncoder:
    """Build the text feature source: stored token features, or a frozen local BERT on the token ids.

    MMIN and IF-MMIN read fixed BERT-large token features; the stage-2 teacher shares the student's source, so
    a fine-tuned BERT is refused (it would move the teacher's inputs).

    Raises:
        ConfigError: ``finetune`` with the ``bert`` encoder.

    """
    if encoder == "bert" and finetune:
        raise ConfigError(
            "MMIN/IF-MMIN read fixed BERT features, as the authors do: set model.bert_finetune=false"
        )
    return TextEncoder(encoder, feature_dim, bert_path, finetune)


def kaiming_init_(*modules: nn.Module) -> None:
    """Initialise as the authors (``kaiming``): Kaiming-normal (fan_in) Linear/Conv weights, zero biases.

    LSTMs keep PyTorch's default initialisation, as in the authors' code (their initialiser matches class
    names containing ``Linear`` or ``Conv`` only).
    """
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Linear | nn.Conv1d | nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, a=0.0, mode="fan_in")
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)


class LSTMMaxPoolEncoder(nn.Module):
    """One-layer unidirectional LSTM, then max-pooling of its outputs over time (MMIN's ``LSTMEncoder``).

    Args:
        input_dim: frame feature size.
        hidden_dim: LSTM width = embedding size.
        pool: ``padded`` pools over every step, padding included, as the authors do (no lengths, no packing);
            ``valid`` pools over the valid steps only [proposed].

    """

    def __init__(self, input_dim: int, hidden_dim: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers=1, batch_first=True)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """Embed (B, T, D) frames into (B, hidden_dim); ``valid`` (B, T) is used by ``valid`` pooling only."""
        out, _ = self.lstm(x)
        if self.pool == "padded" or valid is None:
            return out.max(dim=1).values
        pooled = out.masked_fill(~valid.unsqueeze(-1), float("-inf")).max(dim=1).values
        # A sequence with no valid step (a wholly absent modality) pools to zeros, not -inf.
        return torch.where(valid.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))


class TextCNN(nn.Module):
    """MMIN's TextCNN: parallel convolutions over whole token vectors, ReLU, max over time, Linear + ReLU.

    The authors convolve a 1-channel (T x D) image with (k x D) kernels; a Conv1d with D input channels and
    kernel k is the same operation (same weights up to a reshape, same fan-in).

    Args:
        input_dim: token feature size D.
        embedding_dim: output size.
        channels: output channels per kernel size.
        kernel_sizes: convolution widths in tokens.
        dropout: dropout on the concatenated pooled features.

    """

    def __init__(
        self,
        input_dim: int,
        embedding_dim: int = 128,
        channels: int = 128,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.min_length = max(kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(input_dim, channels, k) for k in kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Sequential(nn.Linear(channels * len(kernel_sizes), embedding_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        """Embed (B, T, D) tokens into (B, embedding_dim); pads sequences shorter than the widest kernel."""
        if x.shape[1] < self.min_length:
            x = F.pad(x, (0, 0, 0, self.min_length - x.shape[1]))
        x = x.transpose(1, 2)
        pooled = [F.relu(conv(x)).max(dim=2).values for conv in self.convs]
        return self.project(self.dropout(torch.cat(pooled, dim=1)))


class MLPClassifier(nn.Sequential):
    """MMIN's ``FcClassifier``: (Linear, ReLU, Dropout) per hidden layer, then a Linear output layer."""

    def __init__(self, input_dim: int, hidden: Sequence[int], output_dim: int, dropout: float) -> None:
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(input_dim, width), nn.ReLU(), nn.Dropout(dropout)]
            input_dim = width
        layers.append(nn.Linear(input_dim, output_dim))
        super().__init__(*layers)


class ResidualAE(nn.Module):
    """Cascaded residual autoencoder: MMIN's imagination module and IF-MMIN's IF-IM.

    Block k has an encoder (dim -> layers[0] -> ... -> layers[-1], LeakyReLU between, none after the last) and
    a decoder (the mirror image with ReLU, linear output); no dropout, no BatchNorm. The recurrences
    (the two READMEs, "What it does"), with x the input, s the invariant features, out_0 = 0 unless stated:

    - ``mmin``: in_1 = x, in_k = in_{k-1} + out_{k-1}; output Tr(in_n + out_n).
    - ``if_mmin`` (IF-MMIN's repository since 2024-09-04): out_0 = x, in_k = out_{k-1} + s; output Tr(out_n).
    - ``if_mmin_2022`` (the version at publication): in_0 = x, in_k = in_{k-1} + s; output Tr(in_n + out_n).

    Tr is Linear, ReLU, Linear (dim -> dim). The latents z_1..z_n are concatenated for the classifier.

    Args:
        input_dim: width of x (3 x embedding size).
        layers: encoder widths, e.g. (256, 128, 64).
        n_blocks: number of blocks n.
        recurrence: ``mmin``, ``if_mmin`` or ``if_mmin_2022``.

    """

    def __init__(
        self, input_dim: int, layers: Sequence[int], n_blocks: int, recurrence: Recurrence = "mmin"
    ) -> None:
        super().__init__()
        if recurrence not in ("mmin", "if_mmin", "if_mmin_2022"):
            raise ValueError(f"unknown recurrence '{recurrence}': use mmin, if_mmin or if_mmin_2022")
        self.recurrence = recurrence
        self.latent_dim = int(layers[-1]) * n_blocks
        self.encoders = nn.ModuleList(self._stack(input_dim, layers, nn.LeakyReLU) for _ in range(n_blocks))
        self.decoders = nn.ModuleList(
            self._stack(int(layers[-1]), [*reversed(layers[:-1]), input_dim], nn.ReLU)
            for _ in range(n_blocks)
        )
        self.transition = nn.Sequential(
            nn.Linear(input_dim, input_dim), nn.ReLU(), nn.Linear(input_dim, input_dim)
        )

    @staticmethod
    def _stack(input_dim: int, widths: Sequence[int], activation: type[nn.Module]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Linear(input_dim, int(width)), activation()]
            input_dim = int(width)
        return nn.Sequential(*layers[:-1])  # no activation after the last layer

    def forward(self, x: Tensor, invariant: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Reconstruct and encode.

        Args:
            x: (B, input_dim) the fused embeddings of the missing view.
            invariant: (B, input_dim) the invariant features s; required by the IF-MMIN recurrences.

        Returns:
            The reconstruction (B, input_dim) and the concatenated latents (B, n_blocks x layers[-1]).

        """
        if self.recurrence != "mmin" and invariant is None:
            raise ValueError(f"the {self.recurrence} recurrence needs the invariant features")
        latents = []
        block_in, block_out = x, torch.zeros_like(x)
        for k, (encoder, decoder) in enumerate(zip(self.encoders, self.decoders, strict=True)):
            match self.recurrence:
                case "mmin":
                    block_in = block_in + block_out if k else x
                case "if_mmin":
                    assert invariant is not None  # the constructor's recurrence needs it (checked in forward)
                    block_in = (block_out if k else x) + invariant
                case "if_mmin_2022":
                    assert invariant is not None
                    block_in = block_in + invariant
            latent = encoder(block_in)
            block_out = decoder(latent)
            latents.append(latent)
        final = block_out if self.recurrence == "if_mmin" else block_in + block_out
        return self.transition(final), torch.cat(latents, dim=-1)


class EncoderInputs(NamedTuple):
    """What the unimodal encoders read, in the batch's terms.

    Attributes:
        text: (B, T_l, D_l) token features (zeroed where absent).
        audio: (B, T_a, D_a) frames.
        vision: (B, T_v, D_v) frames.
        audio_valid: (B, T_a) padding mask (used by ``valid`` pooling only).
        vision_valid: (B, T_v) padding mask.
        text_ids: (B, 3, T_l) BERT id triplets, for ``model.text_encoder = bert``.
        text_gate: (B, T_l) multiplier on the token features after the text encoder (0 at padding and where
            the text is absent): a BERT text encoder then gives zero-padded sequences, all zero when absent,
            as the stored features are.

    """

    text: Tensor
    audio: Tensor
    vision: Tensor
    audio_valid: Tensor | None = None
    vision_valid: Tensor | None = None
    text_ids: Tensor | None = None
    text_gate: Tensor | None = None


def missing_inputs(batch: Batch) -> EncoderInputs:
    """Read the missing view, what the student and ``forward`` see: x~_m = a_m x_m, with the gaps."""
    return EncoderInputs(
        batch["text"],
        batch["audio"],
        batch["vision"],
        batch.get("audio_valid"),
        batch.get("vision_valid"),
        batch.get("text_ids"),
        (batch["available"][:, :1] & batch["text_valid"]).to(batch["text"].dtype),
    )


def complete_inputs(batch: Batch) -> EncoderInputs:
    """Read the complete view (training batches only): the teacher's input for IF-MMIN's invariant target.

    Its padding masks are the complete view's (``m_valid_full``): the missing view's ``m_valid`` has no
    positions for an absent modality, and would gate the absent text out of the target.
    """
    view = complete_view(batch)
    return EncoderInputs(
        view["text"],
        view["audio"],
        view["vision"],
        view["audio_valid"],
        view["vision_valid"],
        view.get("text_ids"),
        view["text_valid"].to(view["text"].dtype),
    )


def reverse_inputs(batch: Batch, mode: ReverseMode = "modality") -> EncoderInputs:
    """MMIN's reverse view x^rev: only what the missing view lacks (training batches only).

    ``modality`` (the authors'): x^rev_m = (1 - a_m) x_m, the whole modality when it is absent and an
    all-zero sequence when it is present, whatever the frame-level gaps. ``complement`` [proposed]: the
    complete features at the steps the missing view lost (valid and not kept), zeros elsewhere; under
    whole-modality missingness (the paper's ``conditions`` policy) it is identical to ``modality``, and under
    intra-modal protocols it gives the teacher the dropped frames rather than all-zero sequences.
    """
    view = complete_view(batch)
    gates = []
    for j, modality in enumerate(("text", "audio", "vision")):
        full = view[modality]  # type: ignore[literal-required]
        # The complete padding mask: the missing view's has no positions where the modality is absent.
        valid = view[f"{modality}_valid"]  # type: ignore[literal-required]
        if mode == "modality":
            gate = valid & ~batch["available"][:, j : j + 1]
        elif mode == "complement":
            gate = dropped_steps(batch, modality)
        else:
            raise ConfigError(f"unknown model.reverse_input '{mode}': use modality or complement")
        gates.append(gate.to(full.dtype))
    return EncoderInputs(
        view["text"] * gates[0].unsqueeze(-1),
        view["audio"] * gates[1].unsqueeze(-1),
        view["vision"] * gates[2].unsqueeze(-1),
        view["audio_valid"],
        view["vision_valid"],
        view.get("text_ids"),
        gates[0],
    )


def stack_inputs(first: EncoderInputs, second: EncoderInputs) -> EncoderInputs:
    """Stack two sets of inputs as one batch of 2B (one teacher pass); split the output with ``chunk(2)``."""

    def gate(inputs: EncoderInputs) -> Tensor:
        if inputs.text_gate is not None:
            return inputs.text_gate
        return inputs.text.new_ones(inputs.text.shape[:2])

    def cat(a: Tensor | None, b: Tensor | None) -> Tensor | None:
        return None if a is None or b is None else torch.cat([a, b], dim=0)

    fields = [cat(a, b) for a, b in zip(first[:-1], second[:-1], strict=True)]
    return EncoderInputs._make([*fields, torch.cat([gate(first), gate(second)], dim=0)])


class UnimodalEncoders(nn.Module):
    """Base of every MMIN/IF-MMIN network: the text feature source and the three unimodal encoders.

    Children: ``text_features`` (stored features or a frozen local BERT), ``encoder_a`` (LSTM), ``encoder_l``
    (TextCNN), ``encoder_v`` (LSTM); the authors' netA, netL, netV.

    Args:
        model: the ``model`` block (:class:`ImaginationModelConfig`: the embedding size, the TextCNN's
            channels, kernels and dropout, the LSTM encoders' pooling).
        text_features: the text feature source (:class:`TextEncoder`).
        audio_dim: audio frame size.
        vision_dim: vision frame size.

    """

    def __init__(
        self, model: ImaginationModelConfig, text_features: TextEncoder, audio_dim: int, vision_dim: int
    ) -> None:
        super().__init__()
        embedding_dim = model.embedding_dim
        self.embedding_dim = embedding_dim
        self.text_features = text_features
        self.encoder_a = LSTMMaxPoolEncoder(audio_dim, embedding_dim, model.pool)
        self.encoder_l = TextCNN(
            text_features.output_dim, embedding_dim, model.cnn_channels, model.cnn_kernels, model.cnn_dropout
        )
        self.encoder_v = LSTMMaxPoolEncoder(vision_dim, embedding_dim, model.pool)

    def embed(self, inputs: EncoderInputs) -> Tensor:
        """Unimodal embeddings (B, 3, embedding_dim) in :data:`FUSION_ORDER` (audio, text, vision)."""
        tokens = self.text_features(inputs.text, inputs.text_ids)
        if inputs.text_gate is not None:
            tokens = tokens * inputs.text_gate.unsqueeze(-1)
        h_a = self.encoder_a(inputs.audio, inputs.audio_valid)
        h_l = self.encoder_l(tokens)
        h_v = self.encoder_v(inputs.vision, inputs.vision_valid)
        return torch.stack([h_a, h_l, h_v], dim=1)

    def copy_encoders_from(self, other: UnimodalEncoders) -> None:
        """Initialise the three encoders from another network's (stage 2 from stage 1)."""
        for name in ("encoder_a", "encoder_l", "encoder_v"):
            getattr(self, name).load_state_dict(getattr(other, name).state_dict())
