"""Golden and edge-case tests of the exact metrics (docs/metrics.md)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from msabench.errors import ConfigError, UnknownNameError
from msabench.metrics import (
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    MSAMetric,
    UndefinedMetricWarning,
    classification_metrics,
    compute_metrics,
    is_percent_metric,
    regression_metrics,
    sims_metrics,
)

# Golden examples: float32 inputs, expected values fixed in advance (not computed by the code under test)
MOSI_TRUE = np.array([-3.0, -1.6, -0.5, 0.0, 0.0, 0.5, 1.5, 2.5, 2.8, -2.2], dtype=np.float32)
MOSI_PRED = np.array([-2.2, 0.4, 0.2, 0.0, -0.2, 0.0, 2.2, 1.8, 0.4, -2.5], dtype=np.float32)
MOSI_GOLDEN = {
    "mae": 0.8300,
    "corr": 0.7952,
    "acc7": 0.7000,
    "acc5": 0.8000,
    "acc2_has0": 0.7000,
    "f1_has0": 0.6901,
    "acc2_non0": 0.6250,
    "f1_non0": 0.6190,
}
SIMS_TRUE = np.array([-1.0, -0.8, -0.2, 0.0, 0.2, 0.6, 0.8, 1.0], dtype=np.float32)
SIMS_PRED = np.array([-1.3, -0.5, 0.05, -0.05, 0.3, 0.75, 0.65, 1.2], dtype=np.float32)
SIMS_GOLDEN = {"acc2": 0.8750, "acc3": 0.8750, "acc5": 0.5000, "f1": 0.8730, "mae": 0.1250, "corr": 0.9787}
IEMOCAP_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3])
IEMOCAP_PRED = np.array([0, 1, 0, 1, 1, 2, 3, 2, 3, 0, 3, 3])
IEMOCAP_GOLDEN = {"wa": 0.7500, "ua": 0.7708, "f1_macro": 0.7542}


def _assert_4dp(values: dict[str, float], expected: dict[str, float]) -> None:
    for name, want in expected.items():
        assert round(values[name], 4) == pytest.approx(want, abs=1e-12), name


def _with_warnings(
    fn: Callable[..., dict[str, float]], *args: Any, **kwargs: Any
) -> tuple[dict[str, float], str]:
    """Call fn and return its values and all warning messages, which must all be UndefinedMetricWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = fn(*args, **kwargs)
    assert all(issubclass(w.category, UndefinedMetricWarning) for w in caught)
    return values, "\n".join(str(w.message) for w in caught)


def _half_away_from_zero(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


# ---------------------------------------------------------------------------------------------- golden values


def test_mosi_golden() -> None:
    values = regression_metrics(MOSI_PRED, MOSI_TRUE)
    assert tuple(values) == METRIC_NAMES["mosi"]
    _assert_4dp(values, MOSI_GOLDEN)


def test_mosi_golden_wrong_alternatives_do_not_match() -> None:
    swapped = regression_metrics(MOSI_PRED, MOSI_TRUE, legacy_f1_swap=True)
    assert round(swapped["f1_has0"], 4) == pytest.approx(0.7099)
    assert round(swapped["f1_non0"], 4) == pytest.approx(0.6310)
    # the swap changes weighted F1 only, never the accuracies
    assert {k: v for k, v in swapped.items() if "f1" not in k} == {
        k: v for k, v in regression_metrics(MOSI_PRED, MOSI_TRUE).items() if "f1" not in k
    }
    p, y = MOSI_PRED.astype(np.float64), MOSI_TRUE.astype(np.float64)
    for name, bound, wrong in (("acc7", 3.0, 0.3), ("acc5", 2.0, 0.6)):
        half_away = np.mean(
            _half_away_from_zero(p.clip(-bound, bound)) == _half_away_from_zero(y.clip(-bound, bound))
        )
        assert half_away == pytest.approx(wrong)
        assert regression_metrics(MOSI_PRED, MOSI_TRUE)[name] != pytest.approx(wrong)


def test_sims_golden() -> None:
    values = sims_metrics(SIMS_PRED, SIMS_TRUE)
    assert tuple(values) == METRIC_NAMES["sims"]
    _assert_4dp(values, SIMS_GOLDEN)
    # MAE without the clipping would be 0.1875 (spec): the clip is applied
    assert np.mean(np.abs(SIMS_PRED.astype(np.float64) - SIMS_TRUE)) == pytest.approx(0.1875)


def test_sims_legacy_f1_swap() -> None:
    # 2-class bins: labels [0,0,0,0,1,1,1,1], predictions [0,0,1,0,1,1,1,1]; per-class F1 6/7 and 8/9.
    # Label support (4, 4): (6/7 + 8/9) / 2 = 110/126;
    # predicted support (3, 5): (3*6/7 + 5*8/9) / 8 = 442/504.
    assert sims_metrics(SIMS_PRED, SIMS_TRUE)["f1"] == pytest.approx(110 / 126, abs=1e-12)
    assert sims_metrics(SIMS_PRED, SIMS_TRUE, legacy_f1_swap=True)["f1"] == pytest.approx(
        442 / 504, abs=1e-12
    )


def test_iemocap_golden() -> None:
    values = classification_metrics(IEMOCAP_PRED, IEMOCAP_TRUE)
    assert tuple(values) == METRIC_NAMES["iemocap"]
    _assert_4dp(values, IEMOCAP_GOLDEN)


# ------------------------------------------------------------------------------------- hand-computed case


def test_mosi_hand_computed_case() -> None:
    # y = [-1, 0, 0.5, 2, -2.5], p = [0.5, -0.5, 0, 2.5, -1.5] (all exact in float32)
    # Has0: y>=0 F,T,T,T,F  p>=0 T,F,T,T,F -> 3/5. Confusion (rows label): neg [1,1], non-neg [1,2];
    #   F1_neg = 2*1/(2+2) = 1/2, F1_nonneg = 2*2/(3+3) = 2/3, weighted by label support (2,3): (1+2)/5 = 0.6.
    # Non0: drop y=0 -> y = [-1, .5, 2, -2.5], p = [.5, 0, 2.5, -1.5]; y>0 F,T,T,F  p>0 T,F,T,F (p=0 negative)
    #   -> 2/4; confusion neg [1,1], pos [1,1]; F1 = 1/2 each -> 0.5.
    # Acc-7 half to even: round(y) = -1, 0, 0, 2, -2; round(p) = 0, -0, 0, 2, -2 -> 4/5
    #   (half away from zero would give y -1, 0, 1, 2, -3 and p 1, -1, 0, 3, -2 -> 0/5).
    # Acc-5: clipping to [-2, 2] changes nothing that rounds differently -> 4/5.
    # MAE: (1.5 + 0.5 + 0.5 + 0.5 + 1.0) / 5 = 0.8.
    # Corr: means -0.2 / 0.2; dy = (-.8, .2, .7, 2.2, -2.3), dp = (.3, -.7, -.2, 2.3, -1.7);
    #   sum dy*dp = 8.45, sum dy^2 = 11.3, sum dp^2 = 8.8 -> 8.45 / sqrt(99.44).
    values = regression_metrics([0.5, -0.5, 0.0, 2.5, -1.5], [-1.0, 0.0, 0.5, 2.0, -2.5])
    expected = {
        "acc2_has0": 0.6,
        "f1_has0": 0.6,
        "acc2_non0": 0.5,
        "f1_non0": 0.5,
        "acc5": 0.8,
        "acc7": 0.8,
        "mae": 0.8,
        "corr": 8.45 / math.sqrt(99.44),
    }
    assert values == pytest.approx(expected, abs=1e-12)


def test_iemocap_hand_computed_macro_over_present_classes() -> None:
    # truth [0,0,1,2], pred [0,1,1,1]; class 3 appears nowhere and is left out of the macro averages
    # (scikit-learn's labels = classes in truth or prediction, as MMIN used it).
    # recall: 1/2, 1/1, 0/1 -> ua 0.5; F1: 2/3, 2*1/(1+3) = 1/2, 0 -> 7/18; wa = 2/4.
    with pytest.warns(UndefinedMetricWarning, match="never predicted"):
        values = classification_metrics([0, 1, 1, 1], [0, 0, 1, 2], num_classes=4)
    assert values == pytest.approx({"wa": 0.5, "ua": 0.5, "f1_macro": 7 / 18}, abs=1e-12)
    # a predicted class absent from the labels counts with recall 0 and F1 0: truth [0,0,1,1], pred [0,3,1,1]
    # recall 1/2, 1, 0 -> 0.5; F1 2/3, 1, 0 -> 5/9; wa 3/4.
    with pytest.warns(UndefinedMetricWarning, match="absent from the labels"):
        values = classification_metrics([0, 3, 1, 1], [0, 0, 1, 1], num_classes=4)
    assert values == pytest.approx({"wa": 0.75, "ua": 0.5, "f1_macro": 5 / 9}, abs=1e-12)


# ------------------------------------------------------------------------------------------------ edge cases


def test_label_exactly_zero_is_nonnegative_for_has0_and_excluded_from_non0() -> None:
    # the y=0 sample is predicted negative: wrong under Has0, ignored under Non0
    values = regression_metrics([-1.0, 1.0, -2.0], [0.0, 1.0, -2.0])
    assert values["acc2_has0"] == pytest.approx(2 / 3)
    assert values["acc2_non0"] == 1.0
    assert values["f1_non0"] == 1.0


def test_prediction_exactly_zero_is_positive_for_has0_and_negative_for_non0() -> None:
    values = regression_metrics([0.0, -1.0, 2.0], [0.5, -1.0, 1.0])
    assert values["acc2_has0"] == 1.0
    assert values["acc2_non0"] == pytest.approx(2 / 3)


def test_mosi_mae_and_corr_use_unclipped_values() -> None:
    # p = [5, 0, -3], y = [3, 1, -3]: MAE (2 + 1 + 0) / 3 = 1 (clipped p = [3, 0, -3] would give 1/3).
    # Corr: dp = (13, -2, -11)/3, dy = (8, 2, -10)/3 -> 210 / sqrt(294 * 168) = 210 / (84 sqrt 7)
    #   = 2.5 / sqrt 7 (clipped: 18 / sqrt(18 * 168 / 9) = 0.982).
    values = regression_metrics([5.0, 0.0, -3.0], [3.0, 1.0, -3.0])
    assert values["mae"] == pytest.approx(1.0, abs=1e-12)
    assert values["corr"] == pytest.approx(2.5 / math.sqrt(7), abs=1e-12)
    assert values["acc7"] == pytest.approx(2 / 3)  # 5 is clipped to 3 for Acc-7


def test_sims_zero_is_class_0() -> None:
    # opposite tie convention to MOSI Has0: 0.0 is non-positive
    assert sims_metrics([0.0, 0.5], [-0.5, 0.5])["acc2"] == 1.0
    assert sims_metrics([0.0, 0.5], [0.01, 0.5])["acc2"] == 0.5


def test_half_integer_ties_round_to_even() -> None:
    # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0 (== 0), -2.5 -> -2, 3.5 -> clipped to 3 first
    pred = [0.5, 1.5, 2.5, -0.5, -2.5, 3.5]
    true = [0.0, 2.0, 2.0, 0.0, -2.0, 3.0]
    values = regression_metrics(pred, true)
    assert values["acc7"] == 1.0
    assert values["acc5"] == 1.0  # clipped to [-2, 2]: 2.5 -> 2, 3.5 -> 2, -2.5 -> -2
    # half away from zero would only agree on 1.5 and 3.5
    assert regression_metrics(pred, [1.0, 2.0, 3.0, -1.0, -3.0, 3.0])["acc7"] == pytest.approx(2 / 6)


def test_sims_bins_are_right_closed_at_float32_edges() -> None:
    # Labels exactly on the edges 0.1, -0.1, 0.7, -0.7 (SIMS has them) fall in the lower bin, compared in
    # float32 as MMSA does: float32(-0.7) > -0.7 in float64, so a float64 comparison would put it in bin 1.
    true = [0.1, -0.1, 0.7, -0.7, 0.0]
    pred = [0.0, -0.5, 0.5, -1.0, -0.05]
    values = sims_metrics(pred, true)
    assert values["acc3"] == 1.0
    assert values["acc5"] == 1.0
    assert values["acc2"] == pytest.approx(0.8)  # 0.1 is positive, the prediction 0.0 is not
    assert sims_metrics(np.array(pred, np.float64), np.array(true, np.float64)) == values


def test_constant_predictions_give_nan_corr_and_a_warning() -> None:
    # all-zero predictions (everything missing at r = 1.0): also no negative prediction under Has0
    values, messages = _with_warnings(regression_metrics, np.zeros(5), [-2.0, -1.0, 0.5, 1.0, 3.0])
    assert math.isnan(values["corr"])
    assert "predictions are constant" in messages and "f1_has0" in messages
    assert values["mae"] == pytest.approx(1.5)
    assert values["acc2_has0"] == pytest.approx(3 / 5) and values["acc2_non0"] == pytest.approx(2 / 5)
    values, messages = _with_warnings(sims_metrics, [0.1, 0.2, 0.3], [0.5, 0.5, 0.5])
    assert math.isnan(values["corr"]) and "labels are constant" in messages
    # clipping can make SIMS predictions constant
    values, messages = _with_warnings(sims_metrics, [2.0, 3.0, 5.0], [0.1, 0.2, -0.3])
    assert math.isnan(values["corr"]) and "predictions are constant" in messages
    assert values["mae"] == pytest.approx((0.9 + 0.8 + 1.3) / 3)


def test_class_absent_from_predictions_has_f1_zero() -> None:
    # every prediction non-negative: F1_neg = 0, F1_nonneg = 2*2/(2+3) = 0.8 -> (1*0 + 2*0.8) / 3
    values, messages = _with_warnings(regression_metrics, [1.0, 1.0, 1.0], [-1.0, 1.0, 2.0])
    assert values["f1_has0"] == pytest.approx(1.6 / 3, abs=1e-12)
    assert "f1_has0: a class present in the labels is never predicted" in messages


def test_all_labels_zero_make_non0_nan() -> None:
    values, messages = _with_warnings(regression_metrics, [0.5, -0.5], [0.0, 0.0])
    assert "every label is 0" in messages
    assert math.isnan(values["acc2_non0"]) and math.isnan(values["f1_non0"])
    assert values["acc2_has0"] == 0.5


@pytest.mark.parametrize("family", ["mosi", "sims", "iemocap"])
def test_empty_input_is_a_clear_error(family: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        compute_metrics(family, [], [])  # type: ignore[arg-type]


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        regression_metrics([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN or inf"):
        regression_metrics([0.1, float("nan")], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"labels must be integer class labels in \[0, 4\)"):
        classification_metrics([0, 1], [0, 4])
    with pytest.raises(ValueError, match="integer class labels"):
        classification_metrics([0, 1.5], [0, 1])
    with pytest.raises(ValueError, match="3 columns but num_classes is 4"):
        classification_metrics(np.zeros((2, 3)), [0, 1])
    with pytest.raises(UnknownNameError, match="unknown metric family 'mosei'"):
        compute_metrics("mosei", [0.1], [0.1])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="num_classes=3"):
        compute_metrics("mosi", [0.1], [0.1], num_classes=3)
    with pytest.raises(ConfigError, match="num_classes"):
        classification_metrics([0], [0], num_classes=1)


# --------------------------------------------------------------------------------------------- input handling


def test_tensors_numpy_lists_and_dtypes_agree() -> None:
    reference = regression_metrics(MOSI_PRED, MOSI_TRUE)
    for pred, true in (
        (MOSI_PRED.astype(np.float64), MOSI_TRUE.astype(np.float64)),
        (MOSI_PRED.tolist(), MOSI_TRUE.tolist()),
        # nominal decimals in float64 (-2.2 != float32(-2.2)) agree too: inputs are rounded through float32
        ([round(v, 2) for v in MOSI_PRED.tolist()], [round(v, 2) for v in MOSI_TRUE.tolist()]),
        (torch.from_numpy(MOSI_PRED), torch.from_numpy(MOSI_TRUE)),
        (torch.from_numpy(MOSI_PRED).double().reshape(-1, 1), torch.from_numpy(MOSI_TRUE).double()),
        (torch.from_numpy(MOSI_PRED).reshape(2, 5), MOSI_TRUE.reshape(5, 2)),
    ):
        assert regression_metrics(pred, true) == reference
    sims_reference = sims_metrics(SIMS_PRED, SIMS_TRUE)
    assert (
        sims_metrics(torch.tensor(SIMS_PRED.tolist(), dtype=torch.float64), SIMS_TRUE.tolist())
        == sims_reference
    )
    assert classification_metrics(
        torch.from_numpy(IEMOCAP_PRED), IEMOCAP_TRUE.tolist()
    ) == classification_metrics(IEMOCAP_PRED, IEMOCAP_TRUE)


def test_classification_from_logits_equals_from_labels() -> None:
    logits = torch.randn(len(IEMOCAP_PRED), 4, generator=torch.Generator().manual_seed(0))
    logits[torch.arange(len(IEMOCAP_PRED)), torch.from_numpy(IEMOCAP_PRED)] += 10.0  # argmax = IEMOCAP_PRED
    from_labels = classification_metrics(IEMOCAP_PRED, IEMOCAP_TRUE)
    assert classification_metrics(logits, IEMOCAP_TRUE) == from_labels
    assert classification_metrics(logits.numpy(), torch.from_numpy(IEMOCAP_TRUE)) == from_labels
    assert classification_metrics(logits.to(torch.bfloat16), IEMOCAP_TRUE) == from_labels


def test_metric_names_and_directions() -> None:
    for names in METRIC_NAMES.values():
        assert set(names) <= set(HIGHER_IS_BETTER)
    assert HIGHER_IS_BETTER["mae"] is False and HIGHER_IS_BETTER["loss"] is False
    assert all(
        HIGHER_IS_BETTER[n] for n in ("acc2_has0", "f1_non0", "acc7", "corr", "acc2", "f1", "wa", "ua")
    )
    assert [n for n in HIGHER_IS_BETTER if is_percent_metric(n)] == [
        n for n in HIGHER_IS_BETTER if n not in ("mae", "corr", "loss")
    ]
    assert is_percent_metric("f1_happy") and is_percent_metric("acc_sad")
    for typo, hint in (("acc2_hs0", "acc2_has0"), ("mea", "mae")):
        with pytest.raises(UnknownNameError, match=f"unknown metric '{typo}'. Did you mean '{hint}'"):
            is_percent_metric(typo)


# ------------------------------------------------------------------------------------------------- MSAMetric


def _batches(n: int, sizes: tuple[int, ...]) -> list[slice]:
    bounds = np.cumsum((0, *sizes))
    assert bounds[-1] == n
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@pytest.mark.parametrize("family", ["mosi", "sims", "iemocap"])
def test_msametric_over_uneven_batches_equals_functional(family: str) -> None:
    gen = torch.Generator().manual_seed(1)
    n = 37
    if family == "iemocap":
        pred = torch.randn(n, 4, generator=gen)
        target = torch.randint(0, 4, (n,), generator=gen)
    else:
        scale = 3.0 if family == "mosi" else 1.0
        pred = torch.randn(n, 1, generator=gen) * scale
        target = (torch.randint(-6, 7, (n,), generator=gen) / 2.0) * (scale / 3.0)  # exact zeros and halves
    metric = MSAMetric(family)
    for part in _batches(n, (1, 16, 5, 15)):
        metric.update(pred[part], target[part])
    result = metric.compute()
    expected = compute_metrics(family, pred, target)  # type: ignore[arg-type]
    assert list(result) == list(METRIC_NAMES[family])  # type: ignore[index]
    assert all(v.dtype == torch.float64 and v.ndim == 0 for v in result.values())
    assert {k: v.item() for k, v in result.items()} == expected
    metric.reset()
    metric.update(pred[:10], target[:10])
    assert {k: v.item() for k, v in metric.compute().items()} == compute_metrics(
        family, pred[:10], target[:10]
    )  # type: ignore[arg-type]


def test_msametric_accepts_half_precision_and_rejects_mismatches() -> None:
    pred = torch.tensor([0.5, -1.25, 2.0], dtype=torch.bfloat16)
    metric = MSAMetric("mosi")
    metric.update(pred, torch.tensor([1.0, -1.0, 2.0]))
    assert metric.compute()["mae"].item() == pytest.approx((0.5 + 0.25 + 0.0) / 3)
    with pytest.raises(ValueError, match="2 predictions for 3 labels"):
        metric.update(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="3 columns but num_classes is 4"):
        MSAMetric("iemocap").update(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(UnknownNameError):
        MSAMetric("mosei")  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*called before the ``update``")  # torchmetrics' own
        with pytest.raises(ValueError, match="before any update"):
            MSAMetric("sims").compute()


def test_no_warning_on_a_regular_split() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regression_metrics(MOSI_PRED, MOSI_TRUE)
        sims_metrics(SIMS_PRED, SIMS_TRUE)
        classification_metrics(IEMOCAP_PRED, IEMOCAP_TRUE)
