"""MMIN's networks: the stage-1 ``utt_fusion`` teacher and the stage-2 imagination student.

Fusion order is MMIN's (audio, text, vision): h = [h_a, h_l, h_v]. Every sub-network is a top-level child, so
that ``optim.clip_norm_per_submodule`` clips each one separately, as the authors do.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from msabench.models.components.imagination_config import ImaginationModelConfig
from msabench.models.components.mmin_blocks import (
    EncoderInputs,
    MLPClassifier,
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
        model: the ``model`` block (the encoders' keys, ``classifier_layers`` and ``pretrain_dropout`` of C0).
        text_features: the text feature source.
        audio_dim: audio frame size.
        vision_dim: vision frame size.
        output_dim: 1 (regression) or the number of classes.

    """

    def __init__(
        self,
        model: ImaginationModelConfig,
        text_features: TextEncoder,
        audio_dim: int,
        vision_dim: int,
        output_dim: int,
    ) -> None:
        super().__init__(model, text_features, audio_dim, vision_dim)
        embedding_dim = model.embedding_dim
        self.classifier = MLPClassifier(
            3 * embedding_dim, model.classifier_layers, output_dim, model.pretrain_dropout
        )
        kaiming_init_(self.encoder_a, self.encoder_l, self.encoder_v, self.classifier)

    def forward(self, inputs: EncoderInputs) -> PretrainOutput:
        """Predict from complete inputs."""
        h = self.embed(inputs)
        return PretrainOutput(self.classifier(h.flatten(1)), h)


class MMINNetwork(UnimodalEncoders):
    """Stage 2: encoders (initialised from stage 1), forward and cycle residual autoencoders, classifier C2.

    Args:
        model: the ``model`` block (the encoders' keys, ``ae_layers`` and ``n_blocks`` of both autoencoders,
            ``classifier_layers`` and ``dropout`` of C2).
        text_features: the text feature source.
        audio_dim: audio frame size.
        vision_dim: vision frame size.
        output_dim: 1 (regression) or the number of classes.

    """

    def __init__(
        self,
        model: ImaginationModelConfig,
        text_features: TextEncoder,
        audio_dim: int,
        vision_dim: int,
        output_dim: int,
    ) -> None:
        super().__init__(model, text_features, audio_dim, vision_dim)
        embedding_dim, ae_layers, n_blocks = model.embedding_dim, model.ae_layers, model.n_blocks
        self.imagination = ResidualAE(3 * embedding_dim, ae_layers, n_blocks, "mmin")
        self.cycle = ResidualAE(3 * embedding_dim, ae_layers, n_blocks, "mmin")
        self.classifier = MLPClassifier(
            self.imagination.latent_dim, model.classifier_layers, output_dim, model.dropout
        )
        kaiming_init_(
            self.encoder_a, self.encoder_l, self.encoder_v, self.imagination, self.cycle, self.classifier
        )

    def forward(self, inputs: EncoderInputs) -> StudentOutput:
        """Predict from the missing view (encoders -> AE -> C2); the cycle output feeds its loss only."""
        h = self.embed(inputs)
        reconstruction, latent = self.imagination(h.flatten(1))
        cycle, _ = self.cycle(reconstruction)
        return StudentOutput(self.classifier(latent), h, reconstruction, cycle, latent)
