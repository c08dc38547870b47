"""lf_dnn as an MSAMethod: the network and its L1 (or cross-entropy) loss; everything else is the base's."""

from __future__ import annotations

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

    def build_network(self, model: ModelConfig, dims: DataDims) -> LFDNN:
        text = self.text_encoder(model, dims)
        return LFDNN(model, text, dims.audio_dim, dims.vision_dim, self.output_dim)

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
