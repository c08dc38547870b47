"""Run identity and provenance: what makes two runs the same run, and what produced a result.

The run key hashes everything that determines what is trained and measured (method, dataset and its
content, the text view and encoder, the training policy with its matched setting, the seed, the resolved
config's hash); the run's directory is named by it, so the same request finds its finished run again, on any
machine. A data file's content is its SHA-256; generated data's content is their recipe (their bytes differ
between kinds of machine in the floats' last bits).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from msabench import config as config_lib
from msabench.protocols import Setting


def run_identity(
    *,
    method: str,
    dataset: str,
    datamodule: Any,
    policy_name: str,
    matched: Setting | None,
    cfg: DictConfig,
) -> dict[str, Any]:
    """The fields the run key hashes.

    Args:
        method: the method's registered name.
        dataset: the canonical dataset name.
        datamodule: the set-up datamodule (its data and text encoder identities, data variant and text view).
        policy_name: the resolved training policy.
        matched: the test setting of a policy that trains one model per setting; None otherwise.
        cfg: the resolved config.
    """
    return {
        "method": method,
        "dataset": dataset,
        "data": datamodule.data_identity,
        "data_variant": datamodule.data_variant,
        "text_view": datamodule.text_view,
        "text_encoder": datamodule.text_encoder_identity,
        "train_policy": policy_name,
        "matched": matched.name if matched is not None else None,
        "seed": cfg.seed,
        "config_hash": config_lib.config_hash(cfg),
    }


def run_key(identity: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the identity's canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def run_name(
    dataset: str, method: str, policy_name: str, matched: Setting | None, seed: int, key: str
) -> str:
    """The run directory's name: readable fields first, the key last (``:`` in a setting becomes ``-``)."""
    setting = f"__{matched.name.replace(':', '-')}" if matched is not None else ""
    return f"{dataset}__{method}__{policy_name}{setting}__s{seed}__{key}"


def version() -> str:
    """The installed msabench version, or ``unknown``."""
    try:
        return metadata.version("msabench")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def git_commit() -> str:
    """The commit of the source tree the package runs from, or ``unknown`` (read once per process)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# The source roots: the import package and the three folders mapped into it (pyproject `package-dir`).
_SOURCE_PACKAGES = ("msabench", "msabench.models", "msabench.datamodules", "msabench.protocols")


@functools.cache
def source_digest() -> str:
    """SHA-256 of the package's Python source, every ``.py`` file once (read once per process).

    What a resume point is tied to: unlike the commit, it stays the same across commits that change no code
    (documentation, results) and it exists for an install that is not a git checkout.
    """
    files: dict[Path, str] = {}
    for name in _SOURCE_PACKAGES:
        init = importlib.import_module(name).__file__
        assert init is not None
        root = Path(init).parent
        for path in sorted(root.rglob("*.py")):
            files.setdefault(path.resolve(), f"{name}:{path.relative_to(root).as_posix()}")
    digest = hashlib.sha256()
    for path, label in sorted(files.items(), key=lambda item: item[1]):
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
