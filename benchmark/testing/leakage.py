"""The benchmark's guarantee, for any method: what a protocol removes never reaches a prediction.

For a method, protocol point and task, an untrained model (weights do not matter: the property holds for any)
predicts the missing view of a test batch; then everything the protocol removed is changed in the complete
batch — the values of dropped frames and tokens, the ids of dropped tokens (the stored text then recomputed
from the perturbed sentence by the dataset's encoder, as a real file would have it), every value and the valid
length of a wholly absent modality, padded positions — and the prediction must not move. The same check on the
stored text view must see the change: it is known to detect a leak (README, "Protocols";
the leak measured: docs/text-view.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from msabench.core.vocabulary import MODALITIES
from msabench.datamodules.text_view import TextReencoder
from msabench.protocols import MISSING_CONDITIONS, Setting
from msabench.protocols.masks import text_boundaries
from msabench.runner import PreparedRun, RunRequest, build_final_module, prepare
from msabench.testing.contract import expect

SMOKE_OVERRIDES: tuple[str, ...] = ("data.options.n_scale=0.05",)
TOKEN_SETTINGS: tuple[Setting, ...] = tuple(Setting("intra", rate=r) for r in (0.3, 0.7, 1.0))
SETTINGS: tuple[Setting, ...] = (
    *TOKEN_SETTINGS,
    Setting("inter", rate=0.3),
    Setting("inter", rate=0.6),
    *[Setting("condition", condition=c) for c in MISSING_CONDITIONS],
)
DATASETS: tuple[str, ...] = ("synthetic", "synthetic-iemocap")
BATCH = 24


@functools.cache
def _prepared(method: str, dataset: str, text_view: str, root: str) -> PreparedRun:
    request = RunRequest(
        method=method,
        settings=[Setting("intra", rate=0.3)],
        dataset=dataset,
        overrides=SMOKE_OVERRIDES,
        output=Path(root),
        extra_blocks=("smoke",),
        text_view=text_view,
    )
    return prepare(request)


@functools.cache
def _model(method: str, dataset: str, text_view: str, root: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_final_module(_prepared(method, dataset, text_view, root)).eval()


def _predict(prepared: PreparedRun, model: torch.nn.Module, batch: dict, setting: Setting) -> torch.Tensor:
    missing = prepared.datamodule.missing_view(batch, setting, "test")
    expect(not any(key.endswith("_full") for key in missing), "a test batch carries the complete view")
    with torch.no_grad():
        return model(missing)


def _rows(batch: dict, rows: slice) -> dict:
    return {key: value[rows] for key, value in batch.items()}


def _perturb(
    prepared: PreparedRun, batch: dict, setting: Setting, seed: int = 7, everything: bool = False
) -> dict:
    """The complete batch with everything ``setting`` removes changed, and nothing it keeps.

    With ``everything``, every valid step counts as removed (a check that the test can move a prediction).
    """
    dm = prepared.datamodule
    missing = dm.missing_view(batch, setting, "test")
    if everything:
        missing = {**missing, **{f"{m}_keep": torch.zeros_like(missing[f"{m}_keep"]) for m in MODALITIES}}
    generator = torch.Generator().manual_seed(seed)
    out = {key: value.clone() for key, value in batch.items()}
    available = missing["available"]
    for j, m in enumerate(MODALITIES):
        values, valid = out[m], out[f"{m}_valid"]
        absent = ~available[:, j]
        removed = ~missing[f"{m}_keep"] | absent[:, None]  # dropped steps, padding, absent streams
        noise = torch.randn(values.shape, generator=generator) * 3 + 1
        out[m] = torch.where(removed[..., None], noise, values)
        # An absent stream also gets another length: its duration is removed information.
        other = torch.randint(1, valid.shape[1] + 1, (valid.shape[0], 1), generator=generator)
        new_valid = torch.arange(valid.shape[1]) < other
        out[f"{m}_valid"] = torch.where(absent[:, None], new_valid, valid)
    if "text_ids" in out:
        ids, valid = out["text_ids"].clone(), batch["text_valid"]
        kept = missing["text_keep"] | (text_boundaries(valid) & available[:, :1])
        vocabulary = ids[:, 0][valid & ~text_boundaries(valid)]
        pick = torch.randint(0, len(vocabulary), ids[:, 0].shape, generator=generator)
        ids[:, 0] = torch.where(kept, ids[:, 0], vocabulary[pick])  # dropped, padded and absent tokens
        absent = ~available[:, :1]
        ids[:, 1] = torch.where(absent, out["text_valid"].long(), ids[:, 1])  # the absent text's new length
        out["text_ids"] = ids
        # The stored features of the perturbed file: the dataset's encoder on the perturbed sentence, at the
        # kept positions of every sentence that lost words (the dropped positions keep their noise).
        changed = (valid & ~kept).any(dim=1) & available[:, 0]
        encoded = _encoder(str(dm.data.text_encoder)).encode(ids)
        recomputed = torch.where(kept[..., None], encoded, out["text"])
        out["text"] = torch.where(changed[:, None, None], recomputed, out["text"])
    return out


@functools.cache
def _encoder(path: str) -> TextReencoder:
    return TextReencoder(path)


def _batch(prepared: PreparedRun) -> dict:
    dataset = prepared.datamodule.dataset("test")
    return dataset[np.arange(min(BATCH, len(dataset)))]


def check_nothing_removed_reaches_a_prediction(method: str, dataset: str, root: Path) -> None:
    """Changing what every protocol point removes leaves every prediction unchanged, batch by batch.

    Also: a sample's prediction does not depend on the rest of its batch, and under each availability
    condition what is present does move the prediction (so the check is not vacuous).
    """
    prepared = _prepared(method, dataset, "auto", str(root))
    model = _model(method, dataset, "auto", str(root))
    batch = _batch(prepared)
    for setting in SETTINGS:
        before = _predict(prepared, model, batch, setting)
        after = _predict(prepared, model, _perturb(prepared, batch, setting), setting)
        expect(bool(torch.isfinite(before).all()), f"{setting.name}: non-finite prediction")
        torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5, msg=f"{setting.name} leaks")
        # Nor does the rest of the batch (its other samples' lengths) reach a sample's prediction.
        half = len(batch["index"]) // 2
        halves = torch.cat(
            [
                _predict(prepared, model, _rows(batch, rows), setting)
                for rows in (slice(0, half), slice(half, None))
            ]
        )
        torch.testing.assert_close(
            halves, before, atol=1e-5, rtol=1e-4, msg=f"{setting.name}: batch-dependent"
        )
        if setting.protocol == "condition":  # not vacuous: what is present does move the prediction
            present = _perturb(
                prepared, batch, Setting("condition", condition="tav"), seed=11, everything=True
            )
            moved = _predict(prepared, model, present, setting)
            expect(
                bool((moved - before).abs().max() > 1e-6),
                f"{setting.name}: the prediction ignores the present data",
            )


def check_stored_text_view_is_seen_to_leak(method: str, root: Path) -> None:
    """On the stored (leaky) text view the same perturbation does move the prediction: the check can fail."""
    prepared = _prepared(method, "synthetic", "stored", str(root))
    expect(prepared.datamodule.text_view == "stored", f"text view '{prepared.datamodule.text_view}'")
    model = _model(method, "synthetic", "stored", str(root))
    batch = _batch(prepared)
    for setting in TOKEN_SETTINGS:
        before = _predict(prepared, model, batch, setting)
        after = _predict(prepared, model, _perturb(prepared, batch, setting), setting)
        expect(
            bool((after - before).abs().max() > 1e-4),
            f"{setting.name}: the test did not see the stored view leak",
        )
