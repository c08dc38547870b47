"""The config layer: a run's resolved config, from the defaults to the last ``key=value`` override.

- :mod:`~msabench.config.composition`: the merge order (defaults, method config, dataset blocks, flags,
  overrides), the run key's config hash, and the valid keys.
- :mod:`~msabench.config.schema`: the typed schema of the default blocks and the one-line type errors.
- :mod:`~msabench.config.checks`: value ranges (a seed's bounds, a positive learning rate).
- :mod:`~msabench.config.preflight`: every check of a run's inputs that needs neither torch nor Lightning.

The names below are the composition API the rest of the package uses (``from msabench import config``).
"""

from __future__ import annotations

from msabench.config.composition import (
    EPOCH_CAP_KEY,
    FREE_FORM_BLOCKS,
    NON_DETERMINING_KEYS,
    OPTIONAL_BLOCKS,
    all_keys,
    compose,
    config_hash,
    dataset_blocks,
    load_defaults,
    load_method_config,
    save,
    suggest_key,
)

__all__ = [
    "EPOCH_CAP_KEY",
    "FREE_FORM_BLOCKS",
    "NON_DETERMINING_KEYS",
    "OPTIONAL_BLOCKS",
    "all_keys",
    "compose",
    "config_hash",
    "dataset_blocks",
    "load_defaults",
    "load_method_config",
    "save",
    "suggest_key",
]
