"""MITR-DNet: modality-invariant bidirectional temporal representation distillation for missing data."""
