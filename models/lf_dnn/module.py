"""lf_dnn as an MSAMethod: the network and its L1 (or cross-entropy) loss; everything else is the base's."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import Tensor

from msabench.core.batch import Batch
from msabench.datamodules.base import DataDims
from msabench.models import register
from msabench.models.base import MSAMethod
from msabench.models.lf_dnn.config import LossConfig, ModelConfig
from msabench.models.lf_dnn.network import LFDNN
from msabench.models.schema import BlockSchemas


@register("lf_dnn")
class LFDNNMethod(MSAMethod):
    """MMSA's LF_DNN; under missing data it trains with the protocol being run (``matched``)."""

    network: LFDNN

    paper_policy = "matched"
    schemas = BlockSchemas(model=ModelConfig, loss=LossConfig)

    def build_network(self, model_cfg: DictConfig, dims: DataDims) -> LFDNN:
        return LFDNN(
            text_encoder=self.text_encoder(model_cfg, dims),
            audio_dim=dims.audio_dim,
            vision_dim=dims.vision_dim,
            output_dim=self.output_dim,
            hidden_text=model_cfg.hidden_text,
            hidden_audio=model_cfg.hidden_audio,
            hidden_vision=model_cfg.hidden_vision,
            text_out=model_cfg.text_out,
            post_fusion_dim=model_cfg.post_fusion_dim,
            dropout_audio=model_cfg.dropout_audio,
            dropout_vision=model_cfg.dropout_vision,
            dropout_post=model_cfg.dropout_post,
            av_pool=model_cfg.av_pool,
            text_readout=model_cfg.text_readout,
        )

    def forward(self, batch: Batch) -> Tensor:
        return self.shaped(
            self.network(
                batch["text"],
                batch["audio"],
                batch["audio_valid"],
                batch["vision"],
                batch["vision_valid"],
                batch["text_valid"],
                batch.get("text_ids"),
            )
        )

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        return {"loss": self.task_loss(self(batch), batch["label"])}
