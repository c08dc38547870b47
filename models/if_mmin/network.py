"""IF-MMIN's networks: the stage-1 invariant-feature pretraining network and the stage-2 student.

Fusion order inside both networks is MMIN's (audio, text, vision): h = [h_a, h_l, h_v] and s = [s_a, s_l, s_v]
(``msabench.models.components.mmin_blocks.FUSION_ORDER``). Every sub-network is a top-level child, so that
``optim.clip_norm_per_submodule`` clips each one separately, as the authors do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from msabench.errors import ConfigError
from msabench.models.components.mmin_blocks import (
    EncoderInputs,
    MLPClassifier,
    Pooling,
    Recurrence,
    ResidualAE,
    UnimodalEncoders,
    kaiming_init_,
)
from msabench.models.components.text import TextEncoder

IFIMVariant = Literal["current", "2022"]


class SharedEncoder(nn.Sequential):
    """The invariant encoder S, one set of weights for every modality: (Linear, LeakyReLU) x 2."""

    def __init__(self, dim: int) -> None:
        super().__init__(nn.Linear(dim, dim), nn.LeakyReLU(), nn.Linear(dim, dim), nn.LeakyReLU())


class PretrainOutput(NamedTuple):
    """Stage-1 outputs: the prediction, the embeddings h (B, 3, E) and the invariant features s (B, 3, E)."""

    prediction: Tensor
    embeddings: Tensor
    invariant: Tensor


class StudentOutput(NamedTuple):
    """Stage-2 outputs.

    Attributes:
        prediction: (B, output_dim) from the classifier on the IF-IM latents.
        embeddings: (B, 3, E) unimodal embeddings of the missing view, (audio, text, vision).
        invariant: (B, 3, E) invariant features S(h_m).
        reconstruction: (B, 3E) the imagined complete embeddings.
        latent: (B, n_blocks x AE bottleneck) the IF-IM latents.

    """

    prediction: Tensor
    embeddings: Tensor
    invariant: Tensor
    reconstruction: Tensor
    latent: Tensor


class IFMMINPretrainNetwork(UnimodalEncoders):
    """Stage 1 (``utt_shared``): encoders, the shared encoder S and the classifier C1 on [h, s].

    Args:
        text_features: the text feature source.
        audio_dim: audio frame size.
        vision_dim: vision frame size.
        output_dim: 1 (regression) or the number of classes.
        embedding_dim: unimodal embedding size (128).
        classifier_layers: hidden widths of C1 ((128, 128)).
        dropout: C1 dropout (0.3).
        cnn_channels: TextCNN channels per kernel.
        cnn_kernels: TextCNN kernel sizes.
        cnn_dropout: TextCNN dropout.
        pool: LSTM pooling.

    """

    def __init__(
        self,
        text_features: TextEncoder,
        audio_dim: int,
        vision_dim: int,
        output_dim: int,
        embedding_dim: int = 128,
        classifier_layers: Sequence[int] = (128, 128),
        dropout: float = 0.3,
        cnn_channels: int = 128,
        cnn_kernels: Sequence[int] = (3, 4, 5),
        cnn_dropout: float = 0.5,
        pool: Pooling = "padded",
    ) -> None:
        super().__init__(
            text_features, audio_dim, vision_dim, embedding_dim, cnn_channels, cnn_kernels, cnn_dropout, pool
        )
        self.shared = SharedEncoder(embedding_dim)
        self.classifier = MLPClassifier(6 * embedding_dim, classifier_layers, output_dim, dropout)
        kaiming_init_(self.encoder_a, self.encoder_l, self.encoder_v, self.shared, self.classifier)

    def forward(self, inputs: EncoderInputs) -> PretrainOutput:
        """Predict from complete inputs; the invariant features feed the CMD loss."""
        h = self.embed(inputs)
        s = self.shared(h)
        fused = torch.cat([h.flatten(1), s.flatten(1)], dim=-1)  # [h_a, h_l, h_v, s_a, s_l, s_v]
        return PretrainOutput(self.classifier(fused), h, s)


class IFMMINNetwork(UnimodalEncoders):
    """Stage 2: encoders and S (initialised from stage 1), the IF-IM (residual AE fed s) and classifier C2.

    Args:
        text_features: the text feature source.
        audio_dim: audio frame size.
        vision_dim: vision frame size.
        output_dim: 1 (regression) or the number of classes.
        embedding_dim: unimodal embedding size (128).
        ae_layers: IF-IM encoder widths ((256, 128, 64)).
        n_blocks: IF-IM blocks (5).
        ifim_variant: ``current`` (the repository's forward since 2024-09-04) or ``2022`` (at publication).
        classifier_layers: hidden widths of C2 ((128, 128)).
        dropout: C2 dropout (0.5).
        cnn_channels: TextCNN channels per kernel.
        cnn_kernels: TextCNN kernel sizes.
        cnn_dropout: TextCNN dropout.
        pool: LSTM pooling.

    """

    def __init__(
        self,
        text_features: TextEncoder,
        audio_dim: int,
        vision_dim: int,
        output_dim: int,
        embedding_dim: int = 128,
        ae_layers: Sequence[int] = (256, 128, 64),
        n_blocks: int = 5,
        ifim_variant: IFIMVariant = "current",
        classifier_layers: Sequence[int] = (128, 128),
        dropout: float = 0.5,
        cnn_channels: int = 128,
        cnn_kernels: Sequence[int] = (3, 4, 5),
        cnn_dropout: float = 0.5,
        pool: Pooling = "padded",
    ) -> None:
        super().__init__(
            text_features, audio_dim, vision_dim, embedding_dim, cnn_channels, cnn_kernels, cnn_dropout, pool
        )
        recurrence: Recurrence
        match ifim_variant:
            case "current":
                recurrence = "if_mmin"
            case "2022":
                recurrence = "if_mmin_2022"
            case other:
                raise ConfigError(f"unknown model.ifim_variant '{other}': use current or 2022")
        self.shared = SharedEncoder(embedding_dim)
        self.imagination = ResidualAE(3 * embedding_dim, ae_layers, n_blocks, recurrence)
        self.classifier = MLPClassifier(self.imagination.latent_dim, classifier_layers, output_dim, dropout)
        kaiming_init_(
            self.encoder_a, self.encoder_l, self.encoder_v, self.shared, self.imagination, self.classifier
        )

    def forward(self, inputs: EncoderInputs) -> StudentOutput:
        """Predict from the missing view (encoders -> S -> IF-IM -> C2)."""
        h = self.embed(inputs)
        s = self.shared(h)
        reconstruction, latent = self.imagination(h.flatten(1), s.flatten(1))
        return StudentOutput(self.classifier(latent), h, s, reconstruction, latent)
