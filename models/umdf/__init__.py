"""UMDF: unified self-distillation for MSA with uncertain missing modalities (AAAI 2024)."""
