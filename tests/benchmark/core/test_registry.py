"""The one registry type: lazy targets, entry points, the unknown-name error, no silent replacement."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from msabench.core.registry import Registry, load_target
from msabench.errors import PluginError, UnknownNameError


def test_a_target_given_by_path_is_imported_on_first_use_only(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "lazy_target_mod.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    things = Registry[int]("thing")
    things.add("Answer", "lazy_target_mod:VALUE")
    assert things.names() == ["answer"] and "ANSWER" in things
    assert "lazy_target_mod" not in sys.modules  # reading the names imports nothing
    assert things.get(" answer ") == 42
    assert "lazy_target_mod" in sys.modules


def test_an_unknown_name_lists_the_valid_ones_and_suggests_the_closest() -> None:
    policies = Registry[int]("policy")
    for i, name in enumerate(("lnln", "matched")):
        policies.add(name, i)
    with pytest.raises(UnknownNameError) as info:
        policies.get("lnnl")
    assert str(info.value) == "unknown policy 'lnnl'. Did you mean 'lnln'? Valid policies: lnln, matched."


def test_a_name_is_never_replaced_silently() -> None:
    things = Registry[object]("thing")
    things.add("path", "pathlib:Path")
    things.add("path", Path)  # the same object, by path and by value: harmless
    things.add("path", "pathlib:Path")
    with pytest.raises(ValueError, match="thing 'path' is registered twice"):
        things.add("path", "pathlib:PurePath")
    assert things.get("path") is Path


def test_entry_points_are_read_once_after_the_built_in_names(monkeypatch) -> None:
    calls = []

    class Entry:
        def __init__(self, name: str, value: str) -> None:
            self.name, self.value = name, value

    def entry_points(group: str) -> list[Entry]:
        calls.append(group)
        return [Entry("extra", "pathlib:PurePath"), Entry("own", "os:sep")]

    monkeypatch.setattr("msabench.core.registry.metadata.entry_points", entry_points)
    things = Registry[object]("thing", entry_point_group="my.group")
    things.add("own", "pathlib:Path")
    assert things.names(installed=False) == ["own"] and calls == []
    assert things.names() == ["own", "extra"] and things.names(installed=False) == ["own"]
    assert things.get("own") is Path  # an installed package does not replace a built-in name
    things.get("extra")
    assert calls == ["my.group"]


def test_a_target_that_fails_to_import_is_one_line() -> None:
    things = Registry[object]("thing", entry_point_group=None)
    things.add("gone", "no_such_module_anywhere:X")
    with pytest.raises(PluginError) as info:
        things.get("gone")
    assert str(info.value) == (
        "thing 'gone' (no_such_module_anywhere:X, from msabench) failed to load: "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'"
    )


def test_load_target_follows_dotted_attributes() -> None:
    assert load_target("pathlib:Path.home") == Path.home
    assert load_target("pathlib") is sys.modules["pathlib"]


def test_a_copy_is_independent() -> None:
    things = Registry[int]("thing")
    things.add("a", 1)
    twin = things.copy()
    twin.add("b", 2)
    assert things.names() == ["a"] and twin.names() == ["a", "b"]
