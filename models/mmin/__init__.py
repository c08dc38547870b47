"""MMIN: missing modality imagination network (Zhao et al., ACL 2021), the baseline IF-MMIN extends."""
