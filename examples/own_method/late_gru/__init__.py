"""late_gru: a late-fusion GRU, the worked example of a method from outside msabench (docs/own-method.md)."""
