"""MMIN's networks: the stage-1 ``utt_fusion`` teacher and the stage-2 imagination student.

Fusion order is MMIN's (audio, text, vision): h = [h_a, h_l, h_v]. Every sub-network is a top-level child, so
that ``optim.clip_norm_per_submodule`` clips each one separately, as the authors do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import Tensor

from msabench.models.components.mmin_blocks import (
    EncoderInputs,
    MLPClassifier,
    Pooling,
    ResidualAE,
    UnimodalEncoders,
    kaiming_init_,
)
from msabench.models.components.text import TextEncoder


class PretrainOutput(NamedTuple):
    """Stage-1 outputs: the prediction and the embeddings h (B, 3, E)."""

    prediction: Tensor
    embeddings: Tensor


class StudentOutput(NamedTuple):
    """Stage-2 outputs.

    Attributes:
        prediction: (B, output_dim) from the classifier on the imagination latents.
        embeddings: (B, 3, E) unimodal embeddings of the missing view, (audio, text, vision).
        reconstruction: (B, 3E) the imagined complete embeddings (forward imagination).
        cycle: (B, 3E) the cycle autoencoder's map of the reconstruction back to the input.
        latent: (B, n_blocks x AE bottleneck) the forward autoencoder's latents.

    """

    prediction: Tensor
    embeddings: Tensor
    reconstruction: Tensor
    cycle: Tensor
    latent: Tensor


class MMINPretrainNetwork(UnimodalEncoders):
    """Stage 1 (``utt_fusion``): the three encoders and a classifier C0 on their concatenation.

    Args:
        text_features: the text feature source.
        audio_dim: audio frame size.
        vision_dim: vision frame size.
        output_dim: 1 (regression) or the number of classes.
        embedding_dim: unimodal embedding size (128).
        classifier_layers: hidden widths of C0 ((128, 128)).
        dropout: C0 dropout (0.3).
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
        self.classifier = MLPClassifier(3 * embedding_dim, classifier_layers, output_dim, dropout)
        kaiming_init_(self.encoder_a, self.encoder_l, self.encoder_v, self.classifier)

    def forward(self, inputs: EncoderInputs) -> PretrainOutput:
        """Predict from complete inputs."""
        h = self.embed(inputs)
        return PretrainOutput(self.classifier(h.flatten(1)), h)


class MMINNetwork(UnimodalEncoders):
    """Stage 2: encoders (initialised from stage 1), forward and cycle residual autoencoders, classifier C2.

    Args:
        text_features: the text feature source.
        audio_dim: audio frame size.
        vision_dim: vision frame size.
        output_dim: 1 (regression) or the number of classes.
        embedding_dim: unimodal embedding size (128).
        ae_layers: autoencoder encoder widths ((256, 128, 64)).
        n_blocks: autoencoder blocks (5).
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
        self.imagination = ResidualAE(3 * embedding_dim, ae_layers, n_blocks, "mmin")
        self.cycle = ResidualAE(3 * embedding_dim, ae_layers, n_blocks, "mmin")
        self.classifier = MLPClassifier(self.imagination.latent_dim, classifier_layers, output_dim, dropout)
        kaiming_init_(
            self.encoder_a, self.encoder_l, self.encoder_v, self.imagination, self.cycle, self.classifier
        )

    def forward(self, inputs: EncoderInputs) -> StudentOutput:
        """Predict from the missing view (encoders -> AE -> C2); the cycle output feeds its loss only."""
        h = self.embed(inputs)
        reconstruction, latent = self.imagination(h.flatten(1))
        cycle, _ = self.cycle(reconstruction)
        return StudentOutput(self.classifier(latent), h, reconstruction, cycle, latent)
