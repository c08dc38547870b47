"""The leaderboard on hand-made tidy rows: every aggregate pinned to a hand-computed value."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from msabench import leaderboard as lb
from msabench import store
from msabench.cli import main
from msabench.core.vocabulary import ALL_CONDITIONS
from msabench.errors import ConfigError


def _row(
    method: str,
    seed: int,
    setting: str,
    metric: str,
    value: float,
    *,
    policy: str = "lnln",
    dataset: str = "synthetic",
    status: str = "finished",
    config_id: str = "",
    error: str | None = None,
) -> dict:
    if setting.startswith("condition:"):
        protocol, rate, condition = "inter", math.nan, setting.split(":")[1]
    else:
        protocol, rate, condition = setting.split("@")[0], float(setting.split("@")[1]), None
    family = "sims" if "sims" in dataset else "mosi"
    return {
        "run_key": f"{dataset}-{method}-{policy}-{seed}-{config_id}"
        + (f"-{setting}" if policy == "matched" else ""),
        "status": status,
        "error": error,
        "dataset": dataset,
        "data_sha256": "sha",
        "method": method,
        "train_policy": policy,
        "protocol": protocol,
        "rate": rate,
        "condition": condition,
        "setting": setting,
        "seed": seed,
        "mask_seed": 1111,
        "metric": metric,
        "value": value,
        "metric_family": family,
        "selection": "val:loss:min",
        "ckpt_epoch": 3,
        "epochs": 5,
        "wall_time_s": 1.0,
        "params": 10,
        "config_hash": "h",
        "msabench_version": "0.1.0",
        "git_commit": "abc",
        "config_id": config_id,
    }


def _curve(
    method: str,
    seeds: dict[int, list[float]],
    rates: list[float],
    metric: str = "acc2_has0",
    policy: str = "lnln",
    **kw,
) -> list[dict]:
    return [
        _row(method, s, f"intra@{r:g}", metric, v, policy=policy, **kw)
        for s, values in seeds.items()
        for r, v in zip(rates, values, strict=True)
    ]


def _summary(board: lb.Leaderboard, method: str, summary: str, metric: str = "acc2_has0") -> pd.Series:
    s = board.summaries
    hit = s[(s["method"] == method) & (s["summary"] == summary) & (s["metric"] == metric)]
    assert len(hit) == 1, hit
    return hit.iloc[0]


# ------------------------------------------------------------------------------------------------- statistics
def test_paired_interval_uses_students_t_quantile() -> None:
    # Half-widths divided by sd / sqrt(n) give the two-sided 95 % quantile t(0.975, n - 1) of the tables.
    for differences, quantile in (
        ([0.0, 2.0], 12.7062047362),  # df 1
        ([0.0, 1.0, 5.0, 2.0, 3.0, 9.0], 2.57058183564),  # df 5
        (list(np.arange(31.0) ** 1.5), 2.04227245630),  # df 30
    ):
        d = np.asarray(differences)
        mean, lo, hi = lb.paired_interval(d)
        scale = d.std(ddof=1) / math.sqrt(d.size)
        assert mean == pytest.approx(d.mean())
        assert (hi - mean) / scale == pytest.approx(quantile, abs=1e-8)
        assert (mean - lo) / scale == pytest.approx(quantile, abs=1e-8)


def test_paired_interval_by_hand() -> None:
    mean, lo, hi = lb.paired_interval([1.0, 2.0, 3.0])  # sd 1, t(0.975, 2) = 4.30265
    assert mean == 2.0
    assert (lo, hi) == pytest.approx((2.0 - 4.30265273 / math.sqrt(3), 2.0 + 4.30265273 / math.sqrt(3)))
    mean, lo, hi = lb.paired_interval([0.5])
    assert mean == 0.5 and math.isnan(lo) and math.isnan(hi)


# -------------------------------------------------------------------------------------------------- per point
def test_point_mean_population_std_and_wide_columns() -> None:
    rows = _curve("derl", {1: [0.8, 0.5], 2: [0.7, 0.5], 3: [0.9, 0.5]}, [0.0, 0.5])
    board = lb.build(pd.DataFrame(rows), reference=None)
    point = board.points[(board.points["setting"] == "intra@0")].iloc[0]
    assert point["mean"] == pytest.approx(0.8)
    assert point["std"] == pytest.approx(math.sqrt(0.02 / 3))  # ddof = 0: divide by n, not n - 1
    assert point["n"] == 3 and point["std_ddof"] == 0
    wide = board.wide.set_index("setting")
    assert {"acc2_has0_mean", "acc2_has0_std", "n", "std_ddof"} <= set(wide.columns)
    assert wide.loc["intra@0", "acc2_has0_mean"] == pytest.approx(0.8)
    assert wide.loc["intra@0.5", "acc2_has0_std"] == 0.0


# -------------------------------------------------------------------------------------------------- summaries
def test_auilc_and_mean_over_rates_spec_example() -> None:
    # docs/metrics.md (AUILC): SIMS grid 0.0-0.5, Acc-2 80, 78, 76, 74, 72, 70 -> AUILC 37.5, normalised 75.0.
    rates = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    board = lb.build(pd.DataFrame(_curve("derl", {1: [0.80, 0.78, 0.76, 0.74, 0.72, 0.70]}, rates)), None)
    assert _summary(board, "derl", "auilc")["value"] == pytest.approx(0.375)
    assert _summary(board, "derl", "auilc_norm")["value"] == pytest.approx(0.75)
    assert _summary(board, "derl", "mean_r")["value"] == pytest.approx(0.75)
    assert _summary(board, "derl", "auilc")["grid"] == "0,0.1,0.2,0.3,0.4,0.5"


def test_mean_over_rates_is_not_auilc_over_span() -> None:
    # Endpoints get half weight in the trapezoid: values 1, 0, 0 at r = 0, 0.5, 1.
    board = lb.build(pd.DataFrame(_curve("derl", {1: [1.0, 0.0, 0.0]}, [0.0, 0.5, 1.0])), None)
    assert _summary(board, "derl", "mean_r")["value"] == pytest.approx(1 / 3)
    assert _summary(board, "derl", "auilc")["value"] == pytest.approx(0.25)
    assert _summary(board, "derl", "auilc_no1")["value"] == pytest.approx(0.25)  # over 0 and 0.5 only
    assert _summary(board, "derl", "auilc_no1")["grid"] == "0,0.5"
    assert _summary(board, "derl", "rr_raw")["value"] == pytest.approx(0.25)  # MultiBench: points up to 0.9


def test_relative_robustness_negates_mae() -> None:
    board = lb.build(pd.DataFrame(_curve("derl", {1: [0.8, 1.0]}, [0.0, 0.5], metric="mae")), None)
    assert _summary(board, "derl", "rr_raw", "mae")["value"] == pytest.approx(-0.45)
    assert _summary(board, "derl", "auilc", "mae")["value"] == pytest.approx(0.45)


def test_effective_robustness_against_reference_by_hand() -> None:
    rates = [0.0, 0.1, 0.2]
    rows = (
        _curve("derl", {1: [0.8, 0.7, 0.6]}, rates)
        + _curve("lf_dnn", {1: [0.7, 0.65, 0.5]}, rates)
        + _curve("derl", {1: [0.8, 0.9, 1.0]}, rates, metric="mae")
        + _curve("lf_dnn", {1: [0.8, 1.0, 1.1]}, rates, metric="mae")
    )
    board = lb.build(pd.DataFrame(rows), "lf_dnn")
    # sum_i [(f_i - f_0) - (LF_i - LF_0)] = 0 + (-0.1 + 0.05) + (-0.2 + 0.2)
    assert _summary(board, "derl", "er_raw")["value"] == pytest.approx(-0.05)
    # MAE negated first: f' = -0.8, -0.9, -1.0; LF' = -0.8, -1.0, -1.1 -> 0 + 0.1 + 0.1
    assert _summary(board, "derl", "er_raw", "mae")["value"] == pytest.approx(0.2)
    assert not (board.summaries.query("summary == 'er_raw'")["method"] == "lf_dnn").any()


def test_condition_averages_six_and_seven() -> None:
    values = {"t": 0.5, "a": 0.6, "v": 0.7, "ta": 0.8, "tv": 0.9, "av": 1.0, "tav": 0.65}
    rows = [_row("derl", 1, f"condition:{c}", "f1_non0", v) for c, v in values.items()]
    board = lb.build(pd.DataFrame(rows), None)
    assert _summary(board, "derl", "avg6", "f1_non0")["value"] == pytest.approx(4.5 / 6)
    assert _summary(board, "derl", "avg7", "f1_non0")["value"] == pytest.approx(5.15 / 7)
    partial = lb.build(pd.DataFrame(rows[:5]), None)  # "av" and "tav" missing: no average over a partial set
    assert partial.summaries.empty


def test_undefined_corr_propagates_and_counts_as_zero_in_auilc() -> None:
    rows = _curve("derl", {1: [0.6, 0.3, math.nan], 2: [0.6, 0.3, 0.1]}, [0.0, 0.5, 1.0], metric="corr")
    board = lb.build(pd.DataFrame(rows), None)
    at_one = board.points[board.points["setting"] == "intra@1"].iloc[0]
    assert math.isnan(at_one["mean"]) and at_one["n"] == 2 and at_one["n_finite"] == 1
    auilc = _summary(board, "derl", "auilc", "corr")
    # seed 1: 0.5*(0.6+0.3)/2 + 0.5*(0.3+0)/2 = 0.3; seed 2: 0.225 + 0.1 = 0.325
    assert auilc["value"] == pytest.approx((0.3 + 0.325) / 2)
    assert bool(auilc["nan_as_zero"])
    assert math.isnan(_summary(board, "derl", "mean_r", "corr")["value"])


def test_summaries_use_only_seeds_with_the_whole_grid() -> None:
    rows = _curve("derl", {1: [0.8, 0.6], 2: [0.9, 0.7]}, [0.0, 0.5])[:-1]  # seed 2 lacks r = 0.5
    board = lb.build(pd.DataFrame(rows), None)
    mean_r = _summary(board, "derl", "mean_r")
    assert mean_r["n"] == 1 and mean_r["value"] == pytest.approx(0.7)


# ---------------------------------------------------------------------------------------------------- paired
def test_paired_comparison_marks_intervals_excluding_zero() -> None:
    ref = {1: [0.70], 2: [0.72], 3: [0.68]}
    close = {1: [0.71], 2: [0.74], 3: [0.71]}  # differences 0.01, 0.02, 0.03: interval spans zero
    clear = {1: [0.72], 2: [0.741], 3: [0.702]}  # differences 0.02, 0.021, 0.022
    rows = (
        _curve("lf_dnn", ref, [0.3])
        + _curve("derl", close, [0.3])
        + _curve("umdf", clear, [0.3])
        + _curve("umdf", {1: [0.9], 2: [0.95], 3: [0.91]}, [0.3], metric="mae")
        + _curve("lf_dnn", {1: [0.8], 2: [0.85], 3: [0.8]}, [0.3], metric="mae")
    )
    board = lb.build(pd.DataFrame(rows), "lf_dnn")
    points = board.points.set_index(["method", "metric"])
    derl = points.loc[("derl", "acc2_has0")]
    assert derl["diff_mean"] == pytest.approx(0.02)
    assert derl["diff_lo"] == pytest.approx(0.02 - 4.30265273 * 0.01 / math.sqrt(3))
    assert derl["n_pairs"] == 3 and not derl["significant"]
    umdf = points.loc[("umdf", "acc2_has0")]
    assert umdf["significant"] and umdf["better"]
    umdf_mae = points.loc[("umdf", "mae")]  # MAE up by 0.1, 0.1, 0.11: significantly worse
    assert umdf_mae["significant"] and not umdf_mae["better"]
    assert math.isnan(points.loc[("lf_dnn", "acc2_has0")]["diff_mean"])


def test_reference_follows_the_training_policy() -> None:
    rows = (
        _curve("lf_dnn", {1: [0.5], 2: [0.5]}, [0.3], policy="lnln")
        + _curve("lf_dnn", {1: [0.6], 2: [0.6]}, [0.3], policy="matched")
        + _curve("derl", {1: [0.7], 2: [0.7]}, [0.3], policy="lnln")
        + _curve("mitr_dnet", {1: [0.7], 2: [0.7]}, [0.3], policy="matched")
        + _curve("umdf", {1: [0.7], 2: [0.7]}, [0.3], policy="stochastic")
    )
    diffs = lb.build(pd.DataFrame(rows), "lf_dnn").points.set_index("method")["diff_mean"]
    assert diffs["derl"] == pytest.approx(0.2) and diffs["mitr_dnet"] == pytest.approx(0.1)
    assert math.isnan(
        diffs["umdf"]
    )  # two lf_dnn policies, neither its own: no comparison rather than a guess
    fixed = lb.build(pd.DataFrame(rows), "lf_dnn:matched").points.set_index(["method", "train_policy"])
    assert fixed.loc[("derl", "lnln"), "diff_mean"] == pytest.approx(0.1)
    assert fixed.loc[("umdf", "stochastic"), "diff_mean"] == pytest.approx(0.1)
    assert fixed.loc[("lf_dnn", "lnln"), "diff_mean"] == pytest.approx(-0.1)


# ---------------------------------------------------------------------------------------------------- store
def test_failed_runs_are_listed_not_aggregated() -> None:
    rows = _curve("derl", {1: [0.8]}, [0.0]) + [
        _row(
            "umdf", 1, "intra@0", None, math.nan, status="failed", error="NonFiniteLossError: nan at epoch 2"
        )
    ]
    board = lb.build(pd.DataFrame(rows), None)
    assert list(board.failed["method"]) == ["umdf"]
    assert set(board.points["method"]) == {"derl"}
    assert "NonFiniteLossError" in lb.to_markdown(board)


def test_two_runs_for_one_seed_are_an_error() -> None:
    rows = _curve("derl", {1: [0.8]}, [0.0]) + _curve("derl", {1: [0.7]}, [0.0])
    rows[1]["run_key"] = "other"
    with pytest.raises(ConfigError, match="several finished runs give seed 1"):
        lb.build(pd.DataFrame(rows), None)


def _write_run(root: Path, name: str, rows: list[dict], config: str = "seed: 1\nmodel: {a: 1}\n") -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(config)
    store.write_results(run_dir, pd.DataFrame(rows).drop(columns="config_id"))
    store.write_status(run_dir, "finished")
    return run_dir


def test_load_separates_configs_and_skips_replaced_runs(tmp_path: Path) -> None:
    _write_run(tmp_path, "a", _curve("derl", {1: [0.8]}, [0.0]), "seed: 1\nmodel: {a: 1}\n")
    _write_run(tmp_path, "b", _curve("derl", {2: [0.6]}, [0.0]), "seed: 2\nmodel: {a: 1}\n")  # same config
    _write_run(tmp_path, "c", _curve("derl", {1: [0.4]}, [0.0]), "seed: 1\nmodel: {a: 2}\n")  # another config
    _write_run(tmp_path, "a.replaced-20260101T000000Z", _curve("derl", {1: [0.1]}, [0.0]))
    tidy = lb.load(tmp_path)
    assert len(tidy) == 3
    board = lb.build(tidy, None)
    means = sorted(board.points["mean"])
    assert means == pytest.approx([0.4, 0.7])  # seeds of one config averaged; the other config apart
    md = lb.to_markdown(board)
    assert md.count("| derl [") == 2  # the config id labels the two entries
    with pytest.raises(ConfigError, match="does not exist"):
        lb.load(tmp_path / "nowhere")


def test_load_pools_seeds_by_data_identity_not_bytes(tmp_path: Path) -> None:
    def curve(seed: int, value: float, sha: str, data_id: str | None) -> list[dict]:
        rows = _curve("derl", {seed: [value]}, [0.0])
        return [{**r, "data_sha256": sha, "data_id": data_id} for r in rows]

    # Generated data: the bytes differ between the machines that made the seeds, the recipe does not.
    _write_run(tmp_path / "gen", "a", curve(1, 0.8, "sha-machine-1", "generated:synthetic:v3"), "seed: 1\n")
    _write_run(tmp_path / "gen", "b", curve(2, 0.6, "sha-machine-2", "generated:synthetic:v3"), "seed: 2\n")
    board = lb.build(lb.load(tmp_path / "gen"), None)
    assert list(board.points["mean"]) == pytest.approx([0.7]) and list(board.points["n"]) == [2]
    # Two data files, and rows made before data_id was recorded: the file's SHA-256 keeps them apart.
    _write_run(tmp_path / "files", "a", curve(1, 0.8, "sha-file-1", "sha-file-1"), "seed: 1\n")
    _write_run(tmp_path / "files", "b", curve(2, 0.5, "sha-file-2", "sha-file-2"), "seed: 2\n")
    _write_run(tmp_path / "files", "c", curve(3, 0.4, "sha-file-1", None), "seed: 3\n")
    points = lb.build(lb.load(tmp_path / "files"), None).points.sort_values("mean")
    assert list(points["mean"]) == pytest.approx([0.5, 0.6]) and list(points["n"]) == [1, 2]


# ---------------------------------------------------------------------------------------------------- output
def _board() -> lb.Leaderboard:
    rates = [0.0, 0.5]
    rows = (
        _curve("lf_dnn", {1: [0.70, 0.60], 2: [0.72, 0.62]}, rates)
        + _curve("derl", {1: [0.80, 0.70], 2: [0.821, 0.721]}, rates)
        + _curve("lf_dnn", {1: [0.9, 1.1], 2: [0.9, 1.1]}, rates, metric="mae")
        + _curve("derl", {1: [0.8534, 1.0], 2: [0.8534, 1.0]}, rates, metric="mae")
        + [
            _row(m, s, f"condition:{c}", "acc2_has0", 0.6 + 0.01 * s + (0.1 if m == "derl" else 0))
            for m in ("lf_dnn", "derl")
            for s in (1, 2)
            for c in ALL_CONDITIONS
        ]
    )
    return lb.build(pd.DataFrame(rows), "lf_dnn")


def test_markdown_units_bold_marks_and_footnotes() -> None:
    md = lb.to_markdown(_board(), source="results/x")
    assert "| 0 | derl | lnln | 2 | **81.05 ± 1.05** ↑ | **0.853 ± 0.000** ↑ |" in md  # percent, raw MAE
    assert "| 0 | lf_dnn (reference) | lnln | 2 | 71.00 ± 1.00 | 0.900 ± 0.000 |" in md
    assert "ddof = 0" in md and "(y_true, y_pred)" in md and "validation only" in md
    assert "mask seed(s) 1111" in md and "Has0" in md and "Non0" in md
    assert "Avg over the six missing conditions" in md and "Mean over rates (LNLN)" in md
    assert "AUILC" in md and "`rr_raw`" in md
    assert "Acc-2 |" not in md  # never a bare Acc-2 column


def test_budgets_per_entry_and_seed_count_each_run_once() -> None:
    def runs(
        method: str,
        policy: str,
        settings: list[str],
        facts: dict[int, list[tuple]],
        params: float = 1234567,
        **kw,
    ) -> list[dict]:
        rows = []
        for seed, per_run in facts.items():
            for setting, (epochs, ckpt, cap, patience, wall) in zip(settings, per_run, strict=True):
                for metric in ("acc2_has0", "mae"):  # two metrics: the run's facts must count once
                    row = _row(method, seed, setting, metric, 0.7, policy=policy, **kw)
                    rows.append(
                        row
                        | dict(
                            epochs=epochs,
                            ckpt_epoch=ckpt,
                            max_epochs=cap,
                            patience=patience,
                            wall_time_s=wall,
                            params=params,
                        )
                    )
        return rows

    matched = ["intra@0", "intra@0.5"]
    rows = (
        runs("lf_dnn", "matched", matched, {1: [(20, 12, 200, 8, 10.0), (200, 190, 200, 8, 30.0)]})
        + runs("lf_dnn", "matched", matched, {2: [(30, 22, 200, 8, 20.0), (25, 17, 200, 8, 15.0)]})
        + runs("umdf", "stochastic", ["intra@0"], {1: [(50, 47, 50, None, 100.0)]})
        + runs("derl", "lnln", ["intra@0"], {1: [(12, 9, math.nan, math.nan, 60.0)]}, params=math.nan)
    )
    board = lb.build(pd.DataFrame(rows), None)
    budgets = board.budgets.set_index(["method", "seed"])
    first = budgets.loc[("lf_dnn", 1)]
    assert (first["models"], first["epochs_min"], first["epochs_max"], first["epochs_median"]) == (
        2,
        20,
        200,
        110,
    )
    assert (first["ckpt_epoch_median"], first["max_epochs"], first["patience"]) == (101, 200, 8)
    assert (first["at_cap"], first["wall_time_s"]) == (1, 40.0)  # the run that used all 200 epochs
    assert (budgets.loc[("lf_dnn", 2), "at_cap"], budgets.loc[("lf_dnn", 2), "wall_time_s"]) == (0, 35.0)
    assert budgets.loc[("umdf", 1), "at_cap"] == 1 and math.isnan(budgets.loc[("umdf", 1), "patience"])
    md = lb.to_markdown(board)
    assert "### synthetic · training budgets" in md
    assert budgets.loc[("lf_dnn", 1), "params"] == 1234567 and math.isnan(budgets.loc[("derl", 1), "params"])
    assert "| lf_dnn | matched | 2 per seed | 1,234,567 | patience 8, cap 200 | 20–200 (median 27.5) |" in md
    assert "| 1 | 1: 40, 2: 35 |" in md  # one run at the cap over both seeds; wall time per seed
    assert "| umdf | stochastic | 1 per seed | 1,234,567 | fixed 50 epochs | 50 | 47 | — | 1: 100 |" in md
    assert "| derl | lnln | 1 per seed | — | not recorded | 12 | 9 | — | 1: 60 |" in md


def test_write_files_and_plots(tmp_path: Path) -> None:
    written = lb.write(_board(), tmp_path / "board.csv", "md", tmp_path / "plots")
    names = {p.name for p in written}
    assert {"board.csv", "board.long.csv", "board.summary.csv", "board.budgets.csv", "board.md"} <= names
    assert "synthetic__intra__acc2_has0.png" in names and "synthetic__conditions__acc2_has0.png" in names
    assert (tmp_path / "plots" / "synthetic__intra__mae.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wide = pd.read_csv(tmp_path / "board.csv")
    row = wide[(wide["method"] == "derl") & (wide["setting"] == "intra@0")].iloc[0]
    assert row["acc2_has0_mean"] == pytest.approx(0.8105) and row["n"] == 2  # stored as a fraction, unrounded
    assert "plots/synthetic__intra__acc2_has0.png" in (tmp_path / "board.md").read_text()


def test_cli_leaderboard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "runs"
    rows = _curve("derl", {1: [0.8, 0.6]}, [0.0, 0.5])
    _write_run(root, "r1", rows)
    code = main(
        [
            "leaderboard",
            "--results",
            str(root),
            "--out",
            str(tmp_path / "lb.md"),
            "--plots",
            str(tmp_path / "p"),
        ]
    )
    assert code == 0
    assert (tmp_path / "lb.md").exists() and (tmp_path / "lb.csv").exists()
    assert np.isclose(
        pd.read_csv(tmp_path / "lb.summary.csv").query("summary == 'mean_r'")["value"], 0.7
    ).all()
    assert main(["leaderboard", "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_leaderboard_keeps_only_the_given_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    _write_run(root, "s1", _curve("derl", {1: [0.8, 0.6]}, [0.0, 0.5]))
    _write_run(root, "s2", _curve("derl", {2: [0.4, 0.2]}, [0.0, 0.5]))
    args = ["leaderboard", "--results", str(root), "--out", str(tmp_path / "lb.md"), "--reference", "none"]
    assert main([*args, "--seeds", "1"]) == 0
    wide = pd.read_csv(tmp_path / "lb.csv")
    assert set(wide["n"]) == {1} and wide["acc2_has0_mean"].tolist() == pytest.approx([0.8, 0.6])
    assert "(training seeds 1)" in (tmp_path / "lb.md").read_text()
    assert main([*args, "--seeds", "1:2"]) == 0
    assert pd.read_csv(tmp_path / "lb.csv")["acc2_has0_mean"].tolist() == pytest.approx([0.6, 0.4])
    capsys.readouterr()
    assert main([*args, "--seeds", "7"]) == 2
    assert capsys.readouterr().err.strip().endswith("no results for seed(s) 7: the runs have seed(s) 1, 2")
    assert main([*args, "--seeds", "1:3"]) == 2  # never a board labelled with a seed it lacks
    assert capsys.readouterr().err.strip().endswith("no results for seed(s) 3: the runs have seed(s) 1, 2")


def test_text_views_are_never_pooled() -> None:
    rows = []
    for view, value in (("reencoded", 0.6), ("stored", 0.9)):
        for seed in (1, 2):
            row = _row("derl", seed, "intra@1", "acc2_has0", value + seed / 100, config_id=view)
            rows.append({**row, "text_view": view, "run_key": f"{row['run_key']}-{view}"})
    board = lb.build(pd.DataFrame(rows), reference=None)
    means = board.points.set_index("dataset")["mean"]
    assert means["synthetic"] == pytest.approx(0.615)
    assert means["synthetic (stored text)"] == pytest.approx(0.915)
    markdown = lb.to_markdown(board)
    assert "## synthetic (stored text)" in markdown and "so text drops leak" in markdown
    assert "Text view: re-encoded" in markdown


def test_data_variants_are_never_pooled_and_are_named() -> None:
    # Rows without a variant (written before it was recorded) count as the default, unaligned.
    rows = []
    for variant, view, value in (
        (None, "reencoded", 0.60),
        ("unaligned", "reencoded", 0.62),
        ("aligned", "reencoded", 0.70),
        ("unaligned+zscore", "reencoded", 0.80),
        ("aligned", "stored", 0.90),
    ):
        row = _row("derl", 1, "intra@0.5", "acc2_has0", value, config_id=f"{variant}-{view}")
        rows.append({**row, "data_variant": variant, "text_view": view, "run_key": f"{variant}-{view}"})
    board = lb.build(pd.DataFrame(rows), reference=None)
    datasets = board.points.groupby("dataset", sort=False)["mean"].apply(sorted).to_dict()
    assert datasets == {
        "synthetic": [0.60, 0.62],
        "synthetic (aligned)": [0.70],
        "synthetic (aligned, stored text)": [0.90],
        "synthetic (unaligned+zscore)": [0.80],
    }
    markdown = lb.to_markdown(board)
    assert "Data variant: `unaligned` (runs that did not record it count as `unaligned`)." in markdown
    section = markdown.split("## synthetic (aligned, stored text)")[1].split("\n## ")[0]
    assert "Data variant: `aligned`." in section and "so text drops leak" in section


@pytest.mark.parametrize("kind", ["bars", "curves"])
def test_plots_keep_their_legend_off_the_data(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from msabench.leaderboard import plots

    settings = (
        [f"condition:{c}" for c in ALL_CONDITIONS]
        if kind == "bars"
        else [f"intra@{r / 10}" for r in range(11)]
    )
    rows = [
        _row(method, seed, setting, "acc2_has0", 0.9 - 0.01 * i, policy=policy)
        for i, setting in enumerate(settings)
        for method in ("a_very_long_method_name", "derl", "lf_dnn", "umdf")
        for policy in ("lnln", "conditions")
        for seed in (1, 2)
    ]
    points = lb.build(pd.DataFrame(rows), None).points
    points = points[points["metric"] == "acc2_has0"]
    captured = {}
    original = plots._save

    def keep(fig, path):  # noqa: ANN001, ANN202
        captured["fig"] = fig
        return original(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    if kind == "bars":
        plots.condition_bars(points, "acc2_has0", "t", tmp_path / "plot.png")
    else:
        plots.rate_curves(points, "acc2_has0", "t", tmp_path / "plot.png")
    fig = captured["fig"]
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    legend = fig.legends[0].get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_one_entrys_runs_of_different_code_are_refused_unless_pooled_and_then_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _curve("derl", {1: [0.8, 0.6], 2: [0.7, 0.5]}, [0.0, 0.5])
    rows += _curve("lf_dnn", {1: [0.6, 0.5]}, [0.0, 0.5])
    # Seed 2 of derl after a fix; lf_dnn's one run predates fingerprints (its commit stands in).
    for row in rows:
        row["code_fingerprint"] = "f00d" * 4 if row["seed"] == 2 else "beef" * 4
        if row["method"] == "lf_dnn":
            row["code_fingerprint"] = None
    with pytest.raises(ConfigError, match=r"derl \(lnln\) on synthetic: .*beefbeefbeefbeef \(seed 1\); "):
        lb.build(pd.DataFrame(rows), None)
    board = lb.build(pd.DataFrame(rows), None, pool_across_code=True)
    assert list(board.pooled_code["method"]) == ["derl"]
    assert board.pooled_code["versions"].iloc[0] == "beefbeefbeefbeef (seed 1); f00df00df00df00d (seed 2)"
    md = lb.to_markdown(board)
    assert "‡ **Pooled across code versions**" in md and "| derl ‡ | lnln | 2 |" in md
    assert "lf_dnn ‡" not in md  # one code version (its commit): pooled as ever

    root = tmp_path / "runs"
    for seed in (1, 2):
        _write_run(root, f"r{seed}", [r for r in rows if r["method"] == "derl" and r["seed"] == seed])
    args = ["leaderboard", "--results", str(root), "--out", str(tmp_path / "lb.md")]
    assert main(args) == 2
    assert "--pool-across-code" in capsys.readouterr().err
    assert main([*args, "--pool-across-code"]) == 0
    assert "pools runs of different code" in capsys.readouterr().err


def test_code_version_is_the_fingerprint_else_the_commit() -> None:
    from msabench.leaderboard.aggregate import code_versions

    frame = pd.DataFrame(
        {
            "code_fingerprint": ["0123456789abcdef", None, None, None],
            "git_commit": ["a3c8930aaaaaaaaaaaa", "a3c8930aaaaaaaaaaaa", "unknown", None],
        }
    )
    expected = ["0123456789abcdef", "git:a3c8930aaaaa", "unrecorded", "unrecorded"]
    assert code_versions(frame).tolist() == expected
    assert code_versions(pd.DataFrame({"git_commit": ["abc"]})).tolist() == ["git:abc"]


def test_one_sided_cells_are_marked_and_a_readme_declared_cause_is_named() -> None:
    # mitr_dnet, condition a: seed 1 puts every sample on one side (Acc 47.8 %, F1 30.9 %), seed 2 does not.
    rows = []
    for seed, (acc, f1) in {1: (0.478, 0.309), 2: (0.70, 0.69)}.items():
        rows += [
            _row("mitr_dnet", seed, "condition:a", m, v) for m, v in (("acc2_has0", acc), ("f1_has0", f1))
        ]
        rows += [_row("mitr_dnet", seed, "condition:a", "corr", 0.5)]
        rows += [_row("derl", seed, "condition:a", m, v) for m, v in (("acc2_has0", 0.70), ("f1_has0", 0.63))]
    board = lb.build(pd.DataFrame(rows), None)
    md = lb.to_markdown(board)
    assert "| a | mitr_dnet | lnln | 2 | 58.90 ± 11.10 ◐ | 49.95 ± 19.05 ◐ | 0.500 ± 0.000 |" in md
    assert "| a | derl | lnln | 2 | **70.00 ± 0.00** | **63.00 ± 0.00** | — |" in md  # 7 pp: not one-sided
    line = next(x for x in md.splitlines() if x.startswith("- synthetic, `mitr_dnet`"))
    assert line.startswith(
        "- synthetic, `mitr_dnet` (lnln): condition a (seed 1 of 2). Cause (mitr_dnet's README): "
    )
    assert "BatchNorm" in line
    assert "- synthetic, `derl`" not in md
