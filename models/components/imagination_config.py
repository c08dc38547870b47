"""The ``model`` keys MMIN and IF-MMIN share (torch-free: the command line checks them before torch loads)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.schema import TextEncoderConfig, check_choice


@dataclass
class ImaginationModelConfig(TextEncoderConfig):
    """An imagination network's encoders, classifiers and autoencoder; a method's ``ModelConfig`` extends it.

    Attributes:
        embedding_dim: size of every unimodal embedding (IF-MMIN's shared encoder needs them equal).
        cnn_channels: TextCNN channels per kernel size.
        cnn_kernels: TextCNN kernel sizes.
        cnn_dropout: TextCNN dropout.
        pool: the LSTM encoders' pooling: ``padded`` (over every step, padding included, as the authors) or
            ``valid`` (over the valid steps).
        classifier_layers: hidden widths of both stages' classifiers.
        pretrain_dropout: dropout of the stage-1 classifier.
        dropout: dropout of the stage-2 classifier.
        ae_layers: the residual autoencoder's encoder widths.
        n_blocks: the residual autoencoder's blocks.
        reverse_input: what the teacher encodes as the imagination target: ``modality`` (the complete view
            of the absent modalities, as the authors) or ``complement`` (the dropped steps).
    """

    embedding_dim: int = MISSING
    cnn_channels: int = MISSING
    cnn_kernels: list[int] = MISSING
    cnn_dropout: float = MISSING
    pool: str = MISSING
    classifier_layers: list[int] = MISSING
    pretrain_dropout: float = MISSING
    dropout: float = MISSING
    ae_layers: list[int] = MISSING
    n_blocks: int = MISSING
    reverse_input: str = MISSING

    def __post_init__(self) -> None:
        check_choice("model.pool", self.pool, ("padded", "valid"))
        check_choice("model.reverse_input", self.reverse_input, ("modality", "complement"))
