"""IF-MMIN: invariant-feature-based missing modality imagination (Zuo et al., ICASSP 2023)."""
