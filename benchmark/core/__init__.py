"""The torch-free core: the shared vocabulary, the batch contract, atomic file writing, list parsers.

This is the bottom layer of the package: it imports nothing from the rest of msabench except
:mod:`msabench.errors` (itself torch-free), and none of its modules loads torch, Lightning or pandas. The
layers above it, and the rule that imports point down only, are drawn in docs/architecture.md ("Layers").
"""
