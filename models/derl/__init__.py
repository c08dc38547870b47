"""DERL: mixture of disentangled (private and routed shared) experts with multi-level reconstruction."""
