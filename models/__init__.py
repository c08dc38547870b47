"""Method registry: methods register by name, from msabench or from any installed package.

Names are case-insensitive with ``-`` and ``_`` interchangeable. The built-in methods are the folders of
this package; a method that lives in another package registers itself through the ``msabench.methods``
entry-point group, naming either a module (importing it runs its ``@register``) or a method class::

    [project.entry-points."msabench.methods"]
    late_gru = "late_gru.module"

Entry points are read once, on the first call to :func:`names` or :func:`get`. A plugin that fails to load
(an import error, a name that a built-in already has) is left out with one warning line naming its
distribution and the error; asking for its method by name is then an error saying the same. The built-in
methods never depend on a plugin loading. ``docs/own-method.md`` walks through writing one.

Every method's ``config.yaml`` lives beside the module that defines its class, or where the class's
``config_path`` attribute says (a path relative to that module's directory, or absolute): one rule for the
built-in methods and plugins alike.

The names, a built-in method's ``config.yaml`` and its block schemas (``<name>/config.py``) are also known
without importing any method (:func:`known_names`, :func:`builtin_config`): the command line checks a run's
names and config with them before torch and Lightning load (:mod:`msabench.config.preflight`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from msabench.errors import ConfigError, PluginError, PluginWarning, UnknownNameError
from msabench.models.schema import BlockSchemas

if TYPE_CHECKING:
    from importlib.abc import Traversable  # importlib.resources.abc from Python 3.11 on

    from msabench.models.base import MSAMethod

ENTRY_POINT_GROUP = "msabench.methods"
CONFIG_FILE = "config.yaml"

M = TypeVar("M", bound="type[MSAMethod]")
_REGISTRY: dict[str, type[MSAMethod]] = {}
_ORIGIN: dict[str, str] = {}  # method -> "distribution version" of the plugin that registered it
_FAILED: dict[str, str] = {}  # entry-point name -> why its plugin was not loaded
_WARNED: set[str] = set()  # failed plugins already reported
_loading: str | None = None  # the distribution whose entry point is being loaded
_discovered = False


def canonical_name(name: str) -> str:
    """``IF-MMIN`` -> ``if_mmin``."""
    return name.strip().lower().replace("-", "_")


def register(name: str) -> Callable[[M], M]:
    """Class decorator that registers a method under ``name``.

    Raises:
        ValueError: another class already holds the name (a plugin may not replace a built-in method).
    """

    def wrap(cls: M) -> M:
        key = canonical_name(name)
        held = _REGISTRY.get(key)
        if held is not None and held is not cls:
            owner = _ORIGIN.get(key, "msabench (a built-in method)")
            raise ValueError(
                f"method '{key}' is already registered by {held.__module__}.{held.__qualname__} from {owner}"
            )
        _REGISTRY[key] = cls
        if _loading is not None:
            _ORIGIN[key] = _loading
        cls.method_name = key
        return cls

    return wrap


def _discover() -> None:
    """Import every built-in method package so its decorator runs, then load the plugins' entry points."""
    global _discovered
    if _discovered:
        return
    for name in _builtin_folders():
        importlib.import_module(f"msabench.models.{name}.module")
    _discovered = True  # before the plugins: one that calls names() while it loads must not recurse
    for entry_point in _entry_points():
        problem = _load_plugin(entry_point)
        if problem is not None:
            _FAILED[canonical_name(entry_point.name)] = problem


def _warn_failed(but: str | None = None) -> None:
    """One warning per plugin that failed to load, the first time the registry is used after it failed.

    ``but``: the failed plugin the caller asked for by name, which gets an error instead.
    """
    for name, problem in _FAILED.items():
        if name not in _WARNED and name != but:
            warnings.warn(problem, PluginWarning, stacklevel=3)
        _WARNED.add(name)


def _entry_points() -> list[metadata.EntryPoint]:
    """The group's entry points, each once (a distribution found twice on the path lists them twice)."""
    seen: dict[tuple[str, str], metadata.EntryPoint] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault((entry_point.name, entry_point.value), entry_point)
    return list(seen.values())


def _distribution(entry_point: metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


@contextmanager
def _loading_from(distribution: str) -> Iterator[None]:
    global _loading
    _loading = distribution
    try:
        yield
    finally:
        _loading = None


def _load_plugin(entry_point: metadata.EntryPoint) -> str | None:
    """Load one entry point; None when it registered its method, else the one-line reason it was refused.

    Whatever the plugin registered before failing is taken out again, and the modules that registered it are
    forgotten, so that a half-loaded plugin leaves no trace and a method it imported (another plugin's) is
    registered again, with its own origin, when its own entry point loads.
    """
    from msabench.models.base import MSAMethod

    distribution = _distribution(entry_point)
    where = f"plugin '{entry_point.name}' (entry point {entry_point.value} of distribution '{distribution}')"
    before = set(_REGISTRY)
    try:
        with _loading_from(distribution):
            target = entry_point.load()
            if inspect.isclass(target) and issubclass(target, MSAMethod):
                if target not in _REGISTRY.values():
                    register(entry_point.name)(target)
            elif not inspect.ismodule(target):
                raise TypeError(f"it names {target!r}, not a module or an MSAMethod subclass")
        key = canonical_name(entry_point.name)
        if set(_REGISTRY) == before and key not in _REGISTRY:
            raise TypeError(
                "it registers no method: decorate the method class with @msabench.models.register(NAME)"
            )
        if key in _REGISTRY and key not in before:
            _ORIGIN[key] = distribution
    except Exception as err:  # noqa: BLE001 - any failure of third-party code is reported, never raised
        for key in set(_REGISTRY) - before:
            sys.modules.pop(_REGISTRY.pop(key).__module__, None)
            _ORIGIN.pop(key, None)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"{where} was not loaded: {type(err).__name__}" + (f": {reason}" if reason else "")
    return None


def _builtin_folders() -> list[str]:
    """The built-in methods: this package's folders with a ``module.py`` (found without importing them)."""
    here = Path(__file__).parent
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(here)])
        if info.ispkg and (here / info.name / "module.py").exists()
    )


def known_names() -> tuple[list[str], list[str]]:
    """The built-in method names and the plugins' entry-point names, without importing any method.

    A plugin listed here may still fail to load (:func:`get` says why); a name in neither list is unknown.
    """
    plugins = sorted({canonical_name(ep.name) for ep in _entry_points()} - set(_builtin_folders()))
    return _builtin_folders(), plugins


def builtin_config(name: str) -> tuple[Traversable, BlockSchemas] | None:
    """A built-in method's ``config.yaml`` and block schemas (the dataclasses of its ``config.py``).

    Read without importing the method's module (its schema module loads only omegaconf); None for a name
    that is not a built-in method. Each built-in's class names the same file and schemas (tested).
    """
    key = canonical_name(name)
    if key not in _builtin_folders():
        return None
    path = resources.files(__name__).joinpath(key).joinpath(CONFIG_FILE)
    schemas = BlockSchemas()
    if resources.files(__name__).joinpath(key).joinpath("config.py").is_file():
        schemas = BlockSchemas.of_module(importlib.import_module(f"{__name__}.{key}.config"))
    return path, schemas


def readme_declaration(name: str, label: str) -> str | None:
    """What a method's ``README.md`` declares under ``label``: the rest of its line ``<label>: <text>``.

    A method declares facts the leaderboard prints beside its numbers this way (``One-sided cells: ...``, the
    cause of predictions that fall on one side of zero; ``docs/metrics.md``). The README is the one beside
    the method's module (``models/<name>/README.md``; a plug-in's beside the module its entry point names),
    read without importing the method. None when there is no such README or line.
    """
    key = canonical_name(name)
    readme: Path | None = None
    if key in _builtin_folders():
        readme = Path(__file__).parent / key / "README.md"
    else:
        for entry_point in _entry_points():
            if canonical_name(entry_point.name) != key:
                continue
            try:  # finds the module's file; imports its parent packages only
                spec = importlib.util.find_spec(entry_point.value.partition(":")[0])
            except (ImportError, ValueError):
                spec = None
            if spec is not None and spec.origin:
                readme = Path(spec.origin).parent / "README.md"
    if readme is None or not readme.is_file():
        return None
    prefix = f"{label}:"
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :].strip() or None
    return None


def names() -> list[str]:
    """Registered method names (built-in and plugins), sorted."""
    _discover()
    _warn_failed()
    return sorted(_REGISTRY)


def origin(name: str) -> str | None:
    """The distribution (``name version``) of a plugin method; None for a built-in method."""
    _discover()
    return _ORIGIN.get(canonical_name(name))


def get(name: str) -> type[MSAMethod]:
    """The method class registered under ``name``.

    Raises:
        UnknownNameError: no method of that name; the message lists the registered ones.
        PluginError: the name is that of a plugin that failed to load; the message says why.
    """
    _discover()
    key = canonical_name(name)
    _warn_failed(but=key)
    if key not in _REGISTRY:
        if key in _FAILED:
            raise PluginError(_FAILED[key])
        raise UnknownNameError("method", name, _REGISTRY)
    return _REGISTRY[key]


def config_file(name: str) -> Traversable:
    """The method's ``config.yaml``: beside the module of its class, or at the class's ``config_path``.

    Raises:
        ConfigError: the file is not there.
    """
    cls = get(name)
    module = sys.modules[cls.__module__]
    relative = Path(getattr(cls, "config_path", None) or CONFIG_FILE)
    if relative.is_absolute():
        path: Traversable = relative
    elif module.__package__:  # resources also reach a package inside a zip or wheel
        path = resources.files(module.__package__).joinpath(str(relative))
    else:  # a top-level module: its directory
        path = Path(inspect.getfile(module)).parent / relative
    if not path.is_file():
        raise ConfigError(
            f"method '{canonical_name(name)}' has no config: expected {path} beside the module "
            f"{cls.__module__} (or set the class's config_path)"
        )
    return path
