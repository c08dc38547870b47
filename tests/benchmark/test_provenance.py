"""The code that made a run: its fingerprint, recorded with it, and a finished run of other code never reused
silently (``docs/provenance.md``)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from msabench import store
from msabench.models import get
from msabench.runner import RunRequest, execute, make_setting
from msabench.runner.identity import SHARED_CODE, _method_digest, code_fingerprint, shared_code_files

DOCS = Path(__file__).resolve().parents[2] / "docs" / "provenance.md"
FAST = ["data.options.n_scale=0.05", "trainer.max_epochs=1", "trainer.patience=null", "data.batch_size=16"]


def _request(tmp_path: Path, **fields: Any) -> RunRequest:
    return RunRequest(
        method="lf_dnn",
        settings=[make_setting("intra", 0.3)],
        train_policy="complete",
        output=tmp_path / "runs",
        extra_blocks=("smoke",),
        overrides=FAST,
        **fields,
    )


def test_the_fingerprint_covers_the_methods_folder_and_the_shared_code_only() -> None:
    derl, lf_dnn = code_fingerprint(get("derl")), code_fingerprint(get("lf_dnn"))
    assert derl.shared == lf_dnn.shared and derl.method != lf_dnn.method and derl.value != lf_dnn.value
    labels = [label for label, _ in shared_code_files()]
    for needed in ("msabench.models:base.py", "msabench:metrics.py", "msabench.protocols:masks.py"):
        assert needed in labels
    assert "msabench.datamodules:text_view.py" in labels and "msabench:runner/stages.py" in labels
    reporting = ("cli", "leaderboard/", "sweep/", "plots", "wandb", "runner/execute", "runner/rows")
    assert not [label for label in labels if any(part in label for part in reporting)]


def test_the_documented_list_is_the_codes() -> None:
    listed = re.findall(r"^- `([^`]+)`", DOCS.read_text(), flags=re.MULTILINE)
    assert listed == [f"{package}:{part}" for package, part in SHARED_CODE]


def test_a_plugin_method_fingerprints_its_own_modules_folder(tmp_path: Path) -> None:
    folder = tmp_path / "plugin"
    (folder / "sub").mkdir(parents=True)
    (folder / "module.py").write_text("class Method:\n    pass\n")
    (folder / "config.yaml").write_text("model: {hidden: 4}\n")
    (folder / "sub" / "notes.py").write_text("x = 1\n")
    spec = importlib.util.spec_from_file_location("msabench_test_plugin", folder / "module.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        before = code_fingerprint(module.Method)
        assert before.shared == code_fingerprint(get("lf_dnn")).shared
        (folder / "sub" / "notes.py").write_text("x = 2\n")  # a subfolder is not the method's
        _method_digest.cache_clear()
        assert code_fingerprint(module.Method) == before
        (folder / "config.yaml").write_text("model: {hidden: 8}\n")
        _method_digest.cache_clear()
        assert code_fingerprint(module.Method).method != before.method
    finally:
        del sys.modules[spec.name]
        _method_digest.cache_clear()


def _made_by_other_code(run_dir: Path, fingerprint: str | None) -> None:
    """Make a finished run look as if other code made it (or code from before fingerprints)."""
    status = store.read_status(run_dir)
    status.pop("code_fingerprint")
    parts = status.pop("code_parts")
    if fingerprint is not None:
        status |= {"code_fingerprint": fingerprint, "code_parts": {**parts, "method": "0" * 16}}
    (run_dir / store.STATUS_FILE).write_text(json.dumps(status))


def test_a_finished_run_of_other_code_is_retrained_unless_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = execute(_request(tmp_path))
    run_dir = Path(first.attrs["run_dir"])
    today = code_fingerprint(get("lf_dnn"))
    assert set(first["code_fingerprint"]) == {today.value}
    status = store.read_status(run_dir)
    assert (status["code_fingerprint"], status["code_parts"]) == (today.value, today.parts())
    assert set(store.read_run(run_dir)["code_fingerprint"]) == {today.value}  # read back as text
    assert execute(_request(tmp_path)).attrs["cached"] is True  # same code: reused, nothing said
    assert "stale" not in capsys.readouterr().err

    _made_by_other_code(run_dir, "0123456789abcdef")
    again = execute(_request(tmp_path))
    assert again.attrs["cached"] is False
    said = capsys.readouterr().err
    assert (
        f"{run_dir.name}: stale, made by other code (fingerprint 0123456789abcdef, today's {today.value}: "
        "the method's own files changed): trained again (the old run is kept as "
    ) in said
    assert "stale" in again.attrs["stale"]
    kept = [p for p in run_dir.parent.iterdir() if ".replaced-" in p.name]
    assert len(kept) == 1 and store.read_status(kept[0])["code_fingerprint"] == "0123456789abcdef"
    assert store.read_status(run_dir)["code_fingerprint"] == today.value

    _made_by_other_code(run_dir, "0123456789abcdef")
    accepted = execute(_request(tmp_path, accept_stale=True))
    assert accepted.attrs["cached"] is True and "as --accept-stale asks" in accepted.attrs["stale"]
    assert "reused although stale" in capsys.readouterr().err

    _made_by_other_code(run_dir, None)  # a run from before fingerprints: its commit is named, and it is stale
    old = execute(_request(tmp_path))
    assert old.attrs["cached"] is False
    made_before = r"stale, made before msabench recorded code fingerprints( \(commit \w+\))?, so"
    assert re.search(made_before, old.attrs["stale"])


def test_run_and_sweep_take_accept_stale_and_a_sweeps_jobs_pass_it_on(tmp_path: Path) -> None:
    from msabench import sweep as sw
    from msabench.cli import build_parser

    parser = build_parser()
    run = ["run", "--method", "lf_dnn", "--protocol", "intra", "--accept-stale"]
    assert parser.parse_args(run).accept_stale
    assert parser.parse_args(["sweep", "--accept-stale"]).accept_stale
    assert parser.parse_args(["leaderboard", "--results", "r", "--out", "x.csv", "--pool-across-code"])
    job = sw.expand(sw.build_spec("quick"))[0]
    assert job.request(tmp_path).accept_stale is False
    accepting = dataclasses.replace(job, accept_stale=True)
    assert accepting.request(tmp_path).accept_stale is True
    assert accepting.describe() == job.describe()  # the same sweep, the same id
