"""IF-MMIN's networks: the stage-1 invariant-feature pretraining network and the stage-2 student.

Fusion order inside both networks is MMIN's (audio, text, vision): h = [h_a, h_l, h_v] and s = [s_a, s_l, s_v]
(``msabench.models.components.mmin_blocks.FUSION_ORDER``). Every sub-network is a top-level child, so that
``optim.clip_norm_per_submodule`` clips each one separately, as the authors do.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from msabench.models.components.imagination_config import ImaginationModelConfig
from msabench.models.components.mmin_blocks import (
    EncoderInputs,
    MLPClassifier,
    Recurrence,
    ResidualAE,
    UnimodalEncoders,
    kaiming_init_,
)
from msabench.models.components.text import TextEncoder
from msabench.models.if_mmin.config import ModelConfig


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
        model: the ``model`` block (the encoders' keys, ``classifier_layers`` and ``pretrain_dropout`` of C1).
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
        self.shared = SharedEncoder(embedding_dim)
        self.classifier = MLPClassifier(
            6 * embedding_dim, model.classifier_layers, output_dim, model.pretrain_dropout
        )
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
        model: IF-MMIN's ``model`` block (the encoders' keys, ``ae_layers``, ``n_blocks`` and
            ``ifim_variant`` of the IF-IM, ``classifier_layers`` and ``dropout`` of C2).
        text_features: the text feature source.
        audio_dim: audio frame size.
        vision_dim: vision frame size.
        output_dim: 1 (regression) or the number of classes.

    """

    def __init__(
        self, model: ModelConfig, text_features: TextEncoder, audio_dim: int, vision_dim: int, output_dim: int
    ) -> None:
        super().__init__(model, text_features, audio_dim, vision_dim)
        embedding_dim = model.embedding_dim
        recurrence: Recurrence = "if_mmin" if model.ifim_variant == "current" else "if_mmin_2022"
        self.shared = SharedEncoder(embedding_dim)
        self.imagination = ResidualAE(3 * embedding_dim, model.ae_layers, model.n_blocks, recurrence)
        self.classifier = MLPClassifier(
            self.imagination.latent_dim, model.classifier_layers, output_dim, model.dropout
        )
        kaiming_init_(
            self.encoder_a, self.encoder_l, self.encoder_v, self.shared, self.imagination, self.classifier
        )

    def forward(self, inputs: EncoderInputs) -> StudentOutput:
        """Predict from the missing view (encoders -> S -> IF-IM -> C2)."""
        h = self.embed(inputs)
        s = self.shared(h)
        reconstruction, latent = self.imagination(h.flatten(1), s.flatten(1))
        return StudentOutput(self.classifier(latent), h, s, reconstruction, latent)
