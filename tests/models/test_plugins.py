"""Methods from outside msabench: the example package installed as a plugin, run, swept and checked by name.

The example (examples/own_method, a late-fusion GRU) is installed into a throwaway directory as pip lays out
a wheel's files (the package and a ``.dist-info`` with its ``entry_points.txt``, read from the example's
pyproject.toml), which works offline and without a wheel builder; the commands then find it through
PYTHONPATH, as they would in a virtualenv. Broken plugins are made the same way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the example's pyproject.toml is read with it

from msabench import leaderboard  # noqa: E402
from msabench import models as registry  # noqa: E402
from msabench.cli import main  # noqa: E402
from msabench.config import compose  # noqa: E402
from msabench.errors import ConfigError, PluginError, PluginWarning  # noqa: E402

# The top-level modules of the example and of the plugins the tests write.
PLUGIN_MODULES = {
    "late_gru",
    "plain_gru_plugin",
    "broken_plugin",
    "clash_plugin",
    "half_plugin",
    "empty_plugin",
}
PLUGIN_MODULES |= {"mismatch_plugin"}
BROKEN = "import nope\n"  # a dependency that is not installed
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_method"
FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "data.batch_size=8",
    "data.eval_batch_size=32",
    "data.options.n_scale=0.05",
]


def write_distribution(site: Path, name: str, entry_points: dict[str, str], files: dict[str, str]) -> None:
    """An installed distribution: its files and ``NAME-0.1.dist-info`` with METADATA and entry points."""
    for relative, text in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")


def install_example(site: Path) -> None:
    """examples/own_method as pip installs it: its packages (with package data) and its entry points."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    meta = project["project"]
    for package in project["tool"]["setuptools"]["packages"]:
        shutil.copytree(EXAMPLE / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
    )
    group = meta["entry-points"][registry.ENTRY_POINT_GROUP]
    lines = "".join(f"{k} = {v}\n" for k, v in group.items())
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway install directory holding the example plugin only."""
    path = tmp_path_factory.mktemp("site")
    install_example(path)
    return path


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The registry as a new process would find it on the next call (the built-in methods stay imported)."""
    registry.names()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ORIGIN", dict(registry._ORIGIN))
    monkeypatch.setattr(registry, "_FAILED", {})
    monkeypatch.setattr(registry, "_WARNED", set())
    monkeypatch.setattr(registry, "_discovered", False)
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in PLUGIN_MODULES]:
        del sys.modules[name]  # the next test's discovery imports its plugins afresh


def _on_path(monkeypatch: pytest.MonkeyPatch, site: Path) -> None:
    monkeypatch.syspath_prepend(str(site))


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "msabench.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )


# ---------------------------------------------------------------------------------------------- the registry
def test_the_example_registers_through_its_entry_point(
    site: Path, fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_path(monkeypatch, site)
    assert {"late_gru", "lf_dnn", "derl"} <= set(registry.names())
    cls = registry.get("Late-GRU")
    assert cls.__module__ == "late_gru.module" and cls.method_name == "late_gru"
    assert registry.origin("late_gru") == "msabench-late-gru 0.1.0"
    assert registry.origin("lf_dnn") is None
    # Its config is the one beside its module, merged as any method's is (its synthetic block included).
    assert Path(str(registry.config_file("late_gru"))) == site / "late_gru" / "config.yaml"
    cfg = compose("late_gru", "synthetic", "mosi")
    assert (cfg.model.hidden, cfg.trainer.max_epochs, cfg.method.paper_policy) == (32, 10, "stochastic")
    assert cfg.loss.unimodal_weight == 0.5
    assert compose("late_gru", "synthetic-iemocap", "iemocap").selection.metric == "ua"


def test_the_examples_own_keys_are_typed_as_a_built_in_methods_are(
    site: Path, fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_path(monkeypatch, site)
    schemas = registry.get("late_gru").schemas
    assert compose("late_gru", "synthetic", "mosi", schemas=schemas).loss.unimodal_weight == 0.5
    with pytest.raises(ConfigError) as caught:
        compose("late_gru", "synthetic", "mosi", {}, ["loss.unimodal_weight=abc"], schemas=schemas)
    assert str(caught.value) == (
        "late_gru's loss block: loss.unimodal_weight must be a number, not 'abc' (fix the value)"
    )
    with pytest.raises(ConfigError, match=r"unknown key: model\.hiddne"):
        compose("late_gru", "synthetic", "mosi", {}, ["+model.hiddne=8"], schemas=schemas)


def test_list_names_the_plugin_and_its_distribution(
    site: Path, fresh_registry: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _on_path(monkeypatch, site)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "  late_gru     paper policy: stochastic  (plugin: msabench-late-gru 0.1.0)\n" in out
    assert "  lf_dnn       paper policy: matched\n" in out


def test_a_class_entry_point_with_its_own_config_path(
    tmp_path: Path, site: Path, fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = (EXAMPLE / "late_gru" / "config.yaml").read_text().replace("hidden: 32", "hidden: 12")
    write_distribution(
        tmp_path,
        "plain-gru",
        {"plain_gru": "plain_gru_plugin:PlainGRU"},
        {
            "plain_gru_plugin/__init__.py": "from late_gru.module import LateGRU\n\n\n"
            "class PlainGRU(LateGRU):\n    config_path = 'configs/plain.yaml'\n",
            "plain_gru_plugin/configs/plain.yaml": config,
        },
    )
    _on_path(monkeypatch, site)
    _on_path(monkeypatch, tmp_path)
    assert registry.get("plain_gru").method_name == "plain_gru"
    assert registry.origin("plain_gru") == "plain-gru 0.1"
    assert compose("plain_gru", "synthetic", "mosi").model.hidden == 12


def test_broken_plugins_are_one_line_each_and_leave_the_rest(
    tmp_path: Path, site: Path, fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin = registry._REGISTRY["lf_dnn"]  # before discovery: what a plugin must not replace
    write_distribution(tmp_path, "broken", {"broken_gru": "broken_plugin"}, {"broken_plugin.py": BROKEN})
    clash = "from late_gru.module import LateGRU\nfrom msabench.models import register\n\n\n"
    clash += "@register('LF-DNN')\nclass Clash(LateGRU):\n    pass\n"
    write_distribution(tmp_path, "clash", {"lf_dnn": "clash_plugin"}, {"clash_plugin.py": clash})
    half = clash.replace("LF-DNN", "half_gru").replace("Clash", "Half")
    half += "\nraise RuntimeError('late failure')\n"
    write_distribution(tmp_path, "half", {"half_gru": "half_plugin"}, {"half_plugin.py": half})
    write_distribution(tmp_path, "empty", {"empty_gru": "empty_plugin"}, {"empty_plugin.py": "X = 1\n"})
    _on_path(monkeypatch, site)
    _on_path(monkeypatch, tmp_path)
    with pytest.warns(PluginWarning) as caught:
        found = registry.names()
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, PluginWarning))
    assert len(messages) == 4 and all("\n" not in m for m in messages), "\n".join(messages)
    broken, empty, half_loaded, clashing = messages  # sorted by entry-point name
    assert broken.startswith("plugin 'broken_gru' (entry point broken_plugin of distribution 'broken 0.1')")
    assert broken.endswith("was not loaded: ModuleNotFoundError: No module named 'nope'")
    assert "'clash 0.1'" in clashing and "already registered by msabench.models.lf_dnn.module" in clashing
    assert "'empty 0.1'" in empty and "registers no method" in empty
    assert "'half 0.1'" in half_loaded and "RuntimeError: late failure" in half_loaded
    # Nothing of them is registered (not even what a plugin registered before it failed); the rest is there.
    assert "late_gru" in found and not {"broken_gru", "half_gru", "empty_gru"} & set(found)
    assert registry.get("lf_dnn") is builtin
    with pytest.raises(PluginError, match=r"^plugin 'broken_gru' .* No module named 'nope'$"):
        registry.get("broken-gru")


def test_running_a_broken_plugin_is_one_line(
    tmp_path: Path, fresh_registry: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_distribution(tmp_path, "broken", {"broken_gru": "broken_plugin"}, {"broken_plugin.py": BROKEN})
    _on_path(monkeypatch, tmp_path)
    out = tmp_path / "runs"
    args = ["run", "--method", "broken_gru", "--protocol", "intra", "--rate", "0.3", "--output", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: plugin 'broken_gru' (entry point broken_plugin of distribution 'broken 0.1') was not loaded: "
        "ModuleNotFoundError: No module named 'nope'"
    ]
    assert not out.exists()


# ------------------------------------------------------------------------------------------- msabench check
def test_check_runs_the_generic_checks_by_name(
    site: Path, fresh_registry: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _on_path(monkeypatch, site)
    code = main(["check", "--method", "late_gru", "--only", "protocol[inter@0.3],task"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    assert out[0] == "checking late_gru (plugin: msabench-late-gru 0.1.0): 3 checks"
    assert [line.split()[:2] for line in out[1:4]] == [
        ["PASS", "protocol[inter@0.3]"],
        ["PASS", "task[synthetic-iemocap]"],
        ["PASS", "task[synthetic-sims]"],
    ]
    assert out[-1] == "3 passed, 0 failed"
    assert main(["check", "--method", "late_gru", "--only", "protocols"]) == 2
    assert "unknown check 'protocols'. Did you mean 'protocol'?" in capsys.readouterr().err


def test_check_fails_a_method_that_breaks_the_contract(
    tmp_path: Path,
    site: Path,
    fresh_registry: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The class says lnln, its config (the example's) stochastic: runs would not be what `list` says.
    code = "from late_gru.module import LateGRU\n\n\nclass Mismatch(LateGRU):\n"
    code += f"    paper_policy = 'lnln'\n    config_path = {str(site / 'late_gru' / 'config.yaml')!r}\n"
    files = {"mismatch_plugin.py": code}
    write_distribution(tmp_path, "mismatch", {"mismatch_gru": "mismatch_plugin:Mismatch"}, files)
    _on_path(monkeypatch, site)
    _on_path(monkeypatch, tmp_path)
    assert main(["check", "--method", "mismatch_gru", "--only", "protocol[intra@0.3]"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  protocol[intra@0.3]" in out and "paper_policy is 'lnln'" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed (--traceback shows where)"


# ----------------------------------------------------------------------------- run, sweep, leaderboard by CLI
def test_the_plugin_runs_and_sweeps_beside_a_built_in_method(site: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = ["--method", "late_gru", "--protocol", "intra", "--rate", "0.3", "--output", str(runs), *FAST]
    run = _cli(site, "run", *args)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("late_gru on synthetic | policy stochastic")
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    frame = pd.read_csv(run_dir / "results.csv")
    assert set(frame["method"]) == {"late_gru"} and set(frame["status"]) == {"finished"}

    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(
        "grid:\n  methods: [late_gru, lf_dnn]\n  rates: {intra: [0.0, 0.5]}\n  seeds: [1111]\n"
        f"overrides: [{', '.join(FAST)}]\n"
    )
    sweep = _cli(site, "sweep", "--config", str(sweep_file), "--workers", "1", "--output", str(runs))
    assert sweep.returncode == 0, sweep.stderr
    # late_gru's run above has the same key (under its policy a run does not depend on its test settings): the
    # sweep reuses that checkpoint and tests the two new settings; lf_dnn (matched) trains one run per rate.
    assert "3 runs (2 trained, 1 reused, 0 failed)" in sweep.stdout
    tidy = leaderboard.load([runs])
    rows = tidy[tidy["method"] == "late_gru"]
    assert set(rows["setting"]) == {"intra@0", "intra@0.3", "intra@0.5"}
    assert set(tidy["method"]) == {"late_gru", "lf_dnn"}
    board = leaderboard.build(tidy, "lf_dnn")
    assert "late_gru" in set(board.wide["method"])


@pytest.mark.slow
def test_every_generic_check_passes_for_the_example(site: Path) -> None:
    result = _cli(site, "check", "--method", "late_gru")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "13 passed, 0 failed"
