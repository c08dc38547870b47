"""msabench: a fair, reproducible benchmark for multimodal sentiment analysis with missing modalities.

The Python API mirrors the command line::

    import msabench
    results = msabench.run(method="lf_dnn", protocol="intra", rate=0.3)   # a tidy pandas DataFrame
"""

from __future__ import annotations

from typing import Any

__all__ = ["run"]


def __getattr__(name: str) -> Any:
    # Lazy: `import msabench` stays cheap, and importing a submodule never pulls in torch and Lightning.
    if name == "run":
        from msabench.runner import run

        return run
    raise AttributeError(f"module 'msabench' has no attribute '{name}'")
