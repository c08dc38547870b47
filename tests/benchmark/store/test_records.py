"""The run records as written and read back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from msabench import store


def test_hashes_read_back_as_text(tmp_path: Path) -> None:
    # A hex key of digits and one "e" parses as a float (95635704e6017185 -> inf) unless read as text.
    frame = pd.DataFrame(
        [{"run_key": "95635704e6017185", "config_hash": "1e5", "git_commit": "0123", "value": 0.5}]
    )
    store.write_results(tmp_path, frame)
    rows = store.read_run(tmp_path)
    assert rows.loc[0, "run_key"] == "95635704e6017185"
    assert (rows.loc[0, "config_hash"], rows.loc[0, "git_commit"]) == ("1e5", "0123")
    assert rows.loc[0, "value"] == 0.5
