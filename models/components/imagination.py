"""What MMIN and IF-MMIN share as methods: complete-data pretraining, then a student under a frozen teacher.

The student imagines the missing modalities from the teacher's embeddings.

Each method names its two networks and writes its own losses; the stages, the teacher built over the
student's text source, the hand-over between stages and the prediction are here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, cast

from omegaconf import DictConfig
from torch import Tensor

from msabench.core.batch import Batch
from msabench.datamodules.base import DataDims
from msabench.models.base import MSAMethod, Stage
from msabench.models.components.imagination_config import ImaginationModelConfig
from msabench.models.components.mmin_blocks import (
    UnimodalEncoders,
    missing_inputs,
    text_source,
)
from msabench.models.components.text import TextEncoder, TextEncoderName
from msabench.models.schema import TextEncoderConfig


class ImaginationStage(MSAMethod):
    """A stage of MMIN or IF-MMIN: the text source (fixed features only) and the prediction from the view."""

    network: UnimodalEncoders

    def text_encoder(self, model_cfg: TextEncoderConfig | DictConfig, dims: DataDims) -> TextEncoder:
        """The stored features or a frozen BERT; a fine-tuned BERT is refused (it would move the teacher)."""
        encoder = cast("TextEncoderName", model_cfg.text_encoder)
        return text_source(encoder, dims.text_dim, model_cfg.bert_path, model_cfg.bert_finetune)

    def forward(self, batch: Batch) -> Tensor:
        """Predict from the view held in the batch (complete in stage 1, the missing view in stage 2)."""
        return self.shaped(self.network(missing_inputs(batch)).prediction)


class ImaginationPretrain(ImaginationStage):
    """Stage 1 on complete data; ``network_cls`` is the method's stage-1 network (the teacher's shape too)."""

    network_cls: ClassVar[Callable[..., UnimodalEncoders]]  # the stage-1 network class (takes dropout)

    @classmethod
    def pretrain_network(
        cls, model: ImaginationModelConfig, dims: DataDims, output_dim: int, text_features: TextEncoder
    ) -> UnimodalEncoders:
        """The stage-1 network on ``text_features``."""
        return cls.network_cls(model, text_features, dims.audio_dim, dims.vision_dim, output_dim)

    def build_network(self, model_cfg: ImaginationModelConfig, dims: DataDims) -> UnimodalEncoders:
        """Build the encoders and the stage-1 classifier."""
        return self.pretrain_network(model_cfg, dims, self.output_dim, self.text_encoder(model_cfg, dims))


class ImaginationStudent(ImaginationStage):
    """Stage 2: the student, with a frozen copy of the stage-1 network as its teacher.

    Built with ``previous=None`` (a checkpoint reloaded for evaluation), the encoders and the teacher are left
    untrained; their weights then come from the state dict.
    """

    teacher: UnimodalEncoders

    paper_policy = "conditions"
    pretrain: ClassVar[type[ImaginationPretrain]]

    def __init__(self, cfg: DictConfig, dims: DataDims, previous: MSAMethod | None = None) -> None:
        super().__init__(cfg, dims)
        # The teacher reads the student's text source (stored features, or the same frozen BERT).
        model = self.model_config(cfg)
        self.teacher = self.frozen(
            self.pretrain.pretrain_network(model, dims, self.output_dim, self.network.text_features)
        )
        if previous is not None:
            self.init_from_previous(previous)

    @classmethod
    def stages(cls, cfg: DictConfig) -> list[Stage]:
        """Full-modality pretraining (validated on complete data), then the student under the run's policy."""
        return [Stage("pretrain", cls.pretrain, policy="complete", validation="complete"), Stage("main", cls)]

    def init_from_previous(self, previous: MSAMethod) -> None:
        """Student encoders start from stage 1; the teacher is a frozen copy of the stage-1 network."""
        assert isinstance(previous.network, UnimodalEncoders)  # the stage-1 method is the pretrain stage
        self.teacher.load_state_dict(previous.network.state_dict())
        self.network.copy_encoders_from(previous.network)
