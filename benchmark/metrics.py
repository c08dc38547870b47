"""Exact MSA metrics: MMSA's ``MetricsTop`` for MOSI/MOSEI and SIMS, MMIN's for IEMOCAP 4-class, unrounded.

Every value is computed over a whole split (never averaged over batches), in float64, and stored unrounded;
accuracies and F1 are fractions in [0, 1] (shown x100 only when rendering, see :func:`is_percent_metric`).
Definitions and edge cases: ``docs/metrics.md``.

Regression inputs are rounded through float32 before the float64 arithmetic. MMSA evaluates float32
tensors and compares them with the SIMS bin edges in float32, so a label of exactly 0.1 (a common SIMS value)
is neutral there; rounding through float32 reproduces that for any input dtype, and float32 and float64 inputs
give identical values.

Example:
    >>> m = regression_metrics([-1.0, 0.0, 2.0], [-0.5, 0.5, 1.5])
    >>> round(m["acc2_has0"], 4), round(m["acc2_non0"], 4)  # 0.0 is non-negative (Has0), not positive (Non0)
    (1.0, 0.6667)

"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Final, get_args

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from msabench.core.vocabulary import METRIC_NAMES, MetricFamily, higher_is_better, is_percent
from msabench.errors import ConfigError, UnknownNameError

ArrayLike = Tensor | np.ndarray | Sequence[float]

# Every metric column of every family, and the validation loss, with its direction.
HIGHER_IS_BETTER: Final[dict[str, bool]] = {
    name: higher_is_better(name) for names in METRIC_NAMES.values() for name in (*names, "loss")
}
_EMOTION_COLUMNS: Final = frozenset(
    f"{kind}_{e}" for kind in ("acc", "f1") for e in ("happy", "sad", "angry", "neutral")
)

# SIMS bins are left-open, right-closed; only the inner edges matter once values are clipped to [-1, 1]. The
# edges are float32 values, as in MMSA's comparison of float32 arrays with Python floats.
_SIMS_EDGES: Final[dict[int, np.ndarray]] = {
    k: np.asarray(edges, dtype=np.float32).astype(np.float64)
    for k, edges in {2: (0.0,), 3: (-0.1, 0.1), 5: (-0.7, -0.1, 0.1, 0.7)}.items()
}


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined or degenerate for this split (constant predictions, a class never predicted)."""


def is_percent_metric(name: str) -> bool:
    """Whether a metric is displayed as a percentage (accuracies, F1) rather than raw (MAE, Corr, loss).

    Args:
        name: A metric column such as ``acc2_has0``, ``f1_macro`` or ``mae``, or an IEMOCAP per-emotion column
            ``acc_<emotion>``/``f1_<emotion>``.

    Raises:
        UnknownNameError: For a name that is no metric column.

    """
    if name in HIGHER_IS_BETTER:
        return is_percent(name)
    if name in _EMOTION_COLUMNS:
        return True
    raise UnknownNameError("metric", name, [*HIGHER_IS_BETTER, *_EMOTION_COLUMNS])


def regression_metrics(pred: ArrayLike, true: ArrayLike, *, legacy_f1_swap: bool = False) -> dict[str, float]:
    """MOSI/MOSEI metrics (MMSA ``__eval_mosei_regression``), unrounded.

    Args:
        pred: Predicted sentiment scores, any shape; flattened.
        true: Labels in [-3, 3], as many as ``pred``.
        legacy_f1_swap: Weight F1 by predicted-class support, as MMSA before ``cb5e0bd`` and LNLN before
            ``f07d9d2`` did by passing (pred, true). Only for explaining old numbers, never for the
            leaderboard.

    Returns:
        The values of ``METRIC_NAMES["mosi"]``. Has0 splits negative vs non-negative over all samples; Non0
        splits negative vs positive over samples with a non-zero label, where a prediction of exactly 0 is
        negative. Acc-7/Acc-5 round half to even after clipping; MAE and Corr use the unclipped values.

    """
    p, y = _regression_inputs(pred, true)
    non0 = y != 0
    if non0.any():
        acc2_non0 = _accuracy(p[non0] > 0, y[non0] > 0)
        f1_non0 = _weighted_f1(y[non0] > 0, p[non0] > 0, "f1_non0", swap=legacy_f1_swap)
    else:
        _warn("acc2_non0 and f1_non0 are undefined because every label is 0; stored as NaN.")
        acc2_non0 = f1_non0 = float("nan")
    return {
        "acc2_has0": _accuracy(p >= 0, y >= 0),
        "f1_has0": _weighted_f1(y >= 0, p >= 0, "f1_has0", swap=legacy_f1_swap),
        "acc2_non0": acc2_non0,
        "f1_non0": f1_non0,
        "acc5": _accuracy(np.rint(p.clip(-2.0, 2.0)), np.rint(y.clip(-2.0, 2.0))),
        "acc7": _accuracy(np.rint(p.clip(-3.0, 3.0)), np.rint(y.clip(-3.0, 3.0))),
        "mae": float(np.mean(np.abs(p - y))),
        "corr": _pearson(p, y),
    }


def sims_metrics(pred: ArrayLike, true: ArrayLike, *, legacy_f1_swap: bool = False) -> dict[str, float]:
    """SIMS/SIMSv2 metrics (MMSA ``__eval_sims_regression``).

    Args:
        pred: Predicted sentiment scores, any shape; flattened.
        true: Labels in [-1, 1], as many as ``pred``.
        legacy_f1_swap: Weight F1 by predicted-class support (the old (pred, true) order); see
            :func:`regression_metrics`.

    Returns:
        The values of ``METRIC_NAMES["sims"]``. Both arrays are clipped to [-1, 1] first, MAE and Corr
        included. ``acc2``/``f1`` split non-positive vs positive (0 is class 0, unlike MOSI Has0).

    """
    p, y = _regression_inputs(pred, true)
    p, y = p.clip(-1.0, 1.0), y.clip(-1.0, 1.0)
    bins = {k: (_sims_bin(p, k), _sims_bin(y, k)) for k in _SIMS_EDGES}
    return {
        "acc2": _accuracy(*bins[2]),
        "acc3": _accuracy(*bins[3]),
        "acc5": _accuracy(*bins[5]),
        "f1": _weighted_f1(bins[2][1], bins[2][0], "f1", swap=legacy_f1_swap),
        "mae": float(np.mean(np.abs(p - y))),
        "corr": _pearson(p, y),
    }


def classification_metrics(pred: ArrayLike, true: ArrayLike, num_classes: int = 4) -> dict[str, float]:
    """IEMOCAP metrics (MMIN / IF-MMIN): weighted accuracy, unweighted accuracy (UAR) and macro F1.

    Args:
        pred: Logits (N, num_classes), of which the argmax is taken, or class labels (N,).
        true: Class labels (N,) in [0, num_classes).
        num_classes: Number of classes of the task.

    Returns:
        ``wa`` (overall accuracy), ``ua`` (macro recall) and ``f1_macro``. As scikit-learn's macro averages
        in MMIN, they run over the classes present in the labels or the predictions; a predicted class that no
        label has counts with recall 0.

    """
    _check_num_classes(num_classes)
    y_pred = _class_labels(pred, num_classes, "predictions", logits_ok=True)
    y_true = _class_labels(true, num_classes, "labels", logits_ok=False)
    _check_sizes(y_pred, y_true)
    cm = _confusion(y_true, y_pred, num_classes)
    tp, n_true, n_pred = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    present = (n_true + n_pred) > 0
    if (present & (n_true == 0)).any():
        _warn("ua: a class is predicted but absent from the labels; its recall counts as 0.")
    if (present & (n_pred == 0)).any():
        _warn("f1_macro: a class present in the labels is never predicted; its F1 counts as 0.")
    recall = tp[present] / np.maximum(n_true[present], 1)
    f1 = 2.0 * tp[present] / (n_true + n_pred)[present]
    return {"wa": float(tp.sum() / cm.sum()), "ua": float(recall.mean()), "f1_macro": float(f1.mean())}


def compute_metrics(
    family: MetricFamily, pred: ArrayLike, true: ArrayLike, num_classes: int | None = None
) -> dict[str, float]:
    """Compute the metrics of a family: ``mosi`` (MOSI, MOSEI), ``sims`` (SIMS, SIMSv2) or ``iemocap``.

    Args:
        family: Which definitions to apply.
        pred: Predictions (regression scores, or logits/labels for ``iemocap``).
        true: Labels.
        num_classes: Classes of ``iemocap`` (default 4); must be None or 1 for the regression families.

    Raises:
        UnknownNameError: For an unknown family.
        ConfigError: For a ``num_classes`` that does not fit the family.

    """
    num_classes = _resolve_num_classes(family, num_classes)
    match family:
        case "mosi":
            return regression_metrics(pred, true)
        case "sims":
            return sims_metrics(pred, true)
        case "iemocap":
            assert num_classes is not None  # _resolve_num_classes always gives iemocap a class count
            return classification_metrics(pred, true, num_classes)
    raise AssertionError("unreachable: family was validated")  # pragma: no cover


class MSAMetric(Metric):
    """All metrics of a family over a whole split, as a torchmetrics ``Metric`` (DDP-safe, ``cat`` states).

    ``compute`` returns exactly the values of :func:`compute_metrics` on the concatenated predictions, as
    float64 tensors on the metric's device.
    """

    is_differentiable: bool = False
    higher_is_better: bool | None = None  # per metric: see HIGHER_IS_BETTER
    full_state_update: bool = False
    # The ``cat`` states: lists of per-batch tensors between updates (torchmetrics concatenates them into one
    # tensor only around a distributed sync, which compute() accepts too).
    preds: list[Tensor]
    target: list[Tensor]

    def __init__(self, family: MetricFamily, num_classes: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = _resolve_num_classes(family, num_classes)
        self.family: MetricFamily = family
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Store one batch.

        Args:
            pred: Scores (B,) or (B, 1) for regression; logits (B, C) or labels (B,) for ``iemocap``.
            target: Labels (B,).

        """
        pred, target = pred.detach(), target.detach().reshape(-1)
        if self.family == "iemocap":
            if pred.ndim == 2 and pred.shape[1] > 1:
                if pred.shape[1] != self.num_classes:
                    raise ValueError(
                        f"logits have {pred.shape[1]} columns but num_classes is {self.num_classes}."
                    )
                pred = pred.argmax(dim=1)  # store labels, not logits: the metrics only need the argmax
            pred = pred.reshape(-1)
        else:
            # float32 loses nothing the functional path keeps (it rounds through float32 as well)
            pred, target = pred.reshape(-1).float(), target.float()
        if pred.numel() != target.numel():
            raise ValueError(f"{pred.numel()} predictions for {target.numel()} labels in one update().")
        self.preds.append(pred)
        self.target.append(target)

    def compute(self) -> dict[str, Tensor]:
        """Metrics over everything stored since the last reset, as float64 scalars."""
        if isinstance(self.preds, list) and not self.preds:
            raise ValueError("MSAMetric.compute() before any update(): no predictions to compute metrics on.")
        values = compute_metrics(
            self.family, dim_zero_cat(self.preds), dim_zero_cat(self.target), self.num_classes
        )
        device = self.device if self.device.type != "mps" else torch.device("cpu")  # MPS has no float64
        return {k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in values.items()}


def _resolve_num_classes(family: str, num_classes: int | None) -> int | None:
    if family not in get_args(MetricFamily):
        raise UnknownNameError("metric family", family, get_args(MetricFamily))
    if family == "iemocap":
        num_classes = 4 if num_classes is None else num_classes
        _check_num_classes(num_classes)
        return num_classes
    if num_classes not in (None, 1):
        raise ConfigError(
            f"num_classes={num_classes} does not fit the regression metric family '{family}'; leave it unset."
        )
    return None


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2 for classification, got {num_classes!r}.")


def _to_numpy(x: ArrayLike, dtype: type[np.floating]) -> np.ndarray:
    if isinstance(x, Tensor):
        torch_dtype = torch.float32 if dtype is np.float32 else torch.float64
        x = x.detach().cpu().to(torch_dtype).numpy()  # cast on the CPU: MPS has no float64
    return np.asarray(x, dtype=dtype)


def _regression_inputs(pred: ArrayLike, true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, y = (_to_numpy(x, np.float32).reshape(-1).astype(np.float64) for x in (pred, true))
    _check_sizes(p, y)
    for arr, what in ((p, "predictions"), (y, "labels")):
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contain NaN or inf ({(~np.isfinite(arr)).sum()} of {arr.size}).")
    return p, y


def _check_sizes(pred: np.ndarray, true: np.ndarray) -> None:
    if pred.size != true.size:
        raise ValueError(f"got {pred.size} predictions for {true.size} labels; they must match one to one.")
    if pred.size == 0:
        raise ValueError("cannot compute metrics on an empty split (0 predictions).")


def _class_labels(x: ArrayLike, num_classes: int, what: str, *, logits_ok: bool) -> np.ndarray:
    arr = _to_numpy(x, np.float64)  # exact for every integer label and for the argmax of any float logits
    if logits_ok and arr.ndim == 2 and arr.shape[1] > 1:
        if arr.shape[1] != num_classes:
            raise ValueError(f"logits have {arr.shape[1]} columns but num_classes is {num_classes}.")
        if not np.isfinite(arr).all():
            raise ValueError("logits contain NaN or inf.")
        return arr.argmax(axis=1)
    arr = arr.reshape(-1)
    if not (
        np.isfinite(arr).all()
        and (arr == np.rint(arr)).all()
        and (arr >= 0).all()
        and (arr < num_classes).all()
    ):
        raise ValueError(f"{what} must be integer class labels in [0, {num_classes}).")
    return arr.astype(np.int64)


def _accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean(pred == true))


def _sims_bin(x: np.ndarray, k: int) -> np.ndarray:
    # side="left" counts the edges strictly below x, which makes every bin right-closed
    return np.searchsorted(_SIMS_EDGES[k], x, side="left")


def _confusion(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Count (label, prediction) pairs into a (num_classes, num_classes) matrix, rows indexed by the label."""
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _weighted_f1(true: np.ndarray, pred: np.ndarray, name: str, *, swap: bool) -> float:
    """Average per-class F1 weighted by label support (scikit-learn ``average="weighted"``, (y_true, y_pred)).

    With ``swap`` the weights are the predicted-class support, which is what passing (pred, true) computes.
    """
    true, pred = true.astype(np.int64), pred.astype(np.int64)
    num_classes = int(max(true.max(), pred.max())) + 1
    cm = _confusion(true, pred, num_classes)
    tp, n_true, n_pred = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    if ((n_true > 0) & (n_pred == 0)).any():
        _warn(f"{name}: a class present in the labels is never predicted; its F1 counts as 0.")
    # 2TP / (2TP + FP + FN) = 2TP / (label support + predicted support); classes absent from both get weight 0
    f1 = 2.0 * tp / np.maximum(n_true + n_pred, 1)
    weights = n_pred if swap else n_true
    return float(np.sum(f1 * weights) / weights.sum())


def _pearson(pred: np.ndarray, true: np.ndarray) -> float:
    # an exact constancy test: centring a constant float array can leave rounding noise and a spurious r
    for arr, what in ((pred, "predictions"), (true, "labels")):
        if arr.min() == arr.max():
            _warn(f"corr is undefined because the {what} are constant; stored as NaN.")
            return float("nan")
    dp, dt = pred - pred.mean(), true - true.mean()
    r = np.dot(dp, dt) / np.sqrt(np.dot(dp, dp) * np.dot(dt, dt))
    return float(np.clip(r, -1.0, 1.0))


def _warn(message: str) -> None:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)
