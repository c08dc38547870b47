"""Run identity and provenance: what makes two runs the same run, and what produced a result.

The run key hashes everything that determines what is trained and measured (method, dataset and its
content, the text view and encoder, the training policy with its matched setting, the seed, the resolved
config's hash); the run's directory is named by it, so the same request finds its finished run again, on any
machine. A data file's content is its SHA-256; generated data's content is their recipe (their bytes differ
between kinds of machine in the floats' last bits).

The code is not in the key (a fix must not orphan every finished run): it is the run's **code fingerprint**
(:func:`code_fingerprint`), recorded in every row and in ``status.json`` and compared when a finished run is
found again (``docs/provenance.md``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from omegaconf import DictConfig

from msabench import config as config_lib
from msabench.protocols import Setting

if TYPE_CHECKING:
    from msabench.models.base import MSAMethod


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


def stale_reason(status: dict[str, Any], code: CodeFingerprint, commit: str | None = None) -> str | None:
    """Why a finished run was made by other code than today's; None when its fingerprint is today's.

    A run that records no fingerprint (made before msabench recorded one) counts as made by other code: what
    made it cannot be checked, and a number of unknown origin must not be reused silently.

    Args:
        status: the run's ``status.json`` record.
        code: today's fingerprint of the run's code.
        commit: the git commit its rows record, named in the reason of a run without a fingerprint.
    """
    recorded = status.get("code_fingerprint")
    if recorded == code.value:
        return None
    if not recorded:
        made = f" (commit {commit[:12]})" if commit and commit != "unknown" else ""
        return f"made before msabench recorded code fingerprints{made}, so by code it cannot check"
    parts = status.get("code_parts") or {}
    changed = [
        what
        for what, name in (("the method's own files", "method"), ("the shared code", "shared"))
        if parts.get(name) != getattr(code, name)
    ]
    which = f": {' and '.join(changed)} changed" if parts and changed else ""
    return f"made by other code (fingerprint {recorded}, today's {code.value}{which})"


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


# The shared code every run goes through on its way to a number, as (import package, file or folder): the
# method base and shared layers, the data layer and text view, the protocols and policies, the batch contract,
# the metrics, and the runner's parts that build the data, the policy, the trainer and the stages, and restore
# a resumed stage. Left out: what only reports, stores or dispatches (the CLI and Python API, the leaderboard,
# sweeps and executors, plots, W&B, console lines, result rows), documentation and tests. The configs are not
# here: their values are in the run key (the resolved config's hash). docs/provenance.md gives this list to
# users; a test keeps the two in step.
SHARED_CODE: Final[tuple[tuple[str, str], ...]] = (
    ("msabench.models", "base.py"),
    ("msabench.models", "schema.py"),
    ("msabench.models", "components"),
    ("msabench.datamodules", "."),
    ("msabench.protocols", "."),
    ("msabench", "core/batch.py"),
    ("msabench", "core/vocabulary.py"),
    ("msabench", "metrics.py"),
    ("msabench", "runner/prepare.py"),
    ("msabench", "runner/request.py"),
    ("msabench", "runner/resume.py"),
    ("msabench", "runner/stages.py"),
    ("msabench", "runner/trainer.py"),
)
# A method's own files: those of the folder of the module that defines its class (not its subfolders, so a
# plug-in module at the top of a large project does not hash the project).
METHOD_SUFFIXES: Final[tuple[str, ...]] = (".py", ".yaml")


@dataclass(frozen=True)
class CodeFingerprint:
    """The code that determines a run: its method's own files and the shared code it runs through.

    Attributes:
        value: 16 hex digits of the SHA-256 over both parts; what rows and ``status.json`` record.
        method: 16 hex digits over the method's own files (so a stale run can say which part changed).
        shared: 16 hex digits over :data:`SHARED_CODE`.
    """

    value: str
    method: str
    shared: str

    def parts(self) -> dict[str, str]:
        """The two parts, as ``status.json`` records them (``code_parts``)."""
        return {"method": self.method, "shared": self.shared}


def code_fingerprint(method_cls: type[MSAMethod]) -> CodeFingerprint:
    """The fingerprint of the code that determines a run of ``method_cls`` (read once per process).

    A built-in method's folder is ``models/<name>/``; a plug-in's is the folder of the module that defines
    its class, by the same rule.
    """
    module = sys.modules[method_cls.__module__].__file__
    if module is None:  # a class defined outside any file (an interactive session) has no files to hash
        raise ValueError(f"{method_cls.__qualname__} is defined in no file: its code cannot be fingerprinted")
    method = _method_digest(Path(module).resolve().parent)
    shared = _shared_digest()
    value = hashlib.sha256(f"{method}|{shared}".encode()).hexdigest()[:16]
    return CodeFingerprint(value, method, shared)


@functools.cache
def _method_digest(folder: Path) -> str:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in METHOD_SUFFIXES)
    return _digest((p.name, p) for p in files)


@functools.cache
def _shared_digest() -> str:
    return _digest(shared_code_files())


def shared_code_files() -> list[tuple[str, Path]]:
    """The files of :data:`SHARED_CODE`, each with its label (``package:relative/path``), sorted by label."""
    files: dict[str, Path] = {}
    for package, part in SHARED_CODE:
        init = importlib.import_module(package).__file__
        assert init is not None  # a regular package always has its __init__.py
        root = Path(init).parent
        target = (root / part).resolve()
        found = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in found:
            if "__pycache__" not in path.parts:
                files[f"{package}:{path.relative_to(root.resolve()).as_posix()}"] = path
    return sorted(files.items())


def _digest(files: Iterable[tuple[str, Path]]) -> str:
    """16 hex digits of the SHA-256 over labelled files (label, NUL, bytes, NUL each)."""
    digest = hashlib.sha256()
    for label, path in files:
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
