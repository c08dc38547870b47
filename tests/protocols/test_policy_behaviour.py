"""What a training policy knows before it is built: its validation settings, whether it trains per setting."""

from __future__ import annotations

import pytest

from msabench.errors import ConfigError, UnknownNameError
from msabench.protocols import MISSING_CONDITIONS, POLICIES, Setting
from msabench.protocols.policies import policy_class

TEST = [Setting("intra", rate=0.3, mask_seed=7)]


def _validation(name: str, test: list[Setting] = TEST) -> list[Setting]:
    return policy_class(name).validation_settings(test, mask_seed=7, validation_rate=0.4)


def test_each_policy_validates_under_its_own_missingness() -> None:
    assert _validation("complete") == [Setting("complete", mask_seed=7)]
    assert _validation("matched") == TEST  # P2 validates at the run's own setting
    assert _validation("lnln") == [Setting("intra", rate=0.4, mask_seed=7)]
    assert _validation("conditions") == [
        Setting("condition", condition=c, mask_seed=7) for c in MISSING_CONDITIONS
    ]
    assert _validation("stochastic") == [Setting("stochastic", mask_seed=7)]
    assert {name for name in POLICIES if policy_class(name).name == name} == set(POLICIES)


def test_only_matched_trains_per_setting() -> None:
    assert [name for name in POLICIES if policy_class(name).per_setting] == ["matched"]
    with pytest.raises(ConfigError, match="one model per test setting"):
        _validation("matched", [*TEST, Setting("intra", rate=0.5, mask_seed=7)])
    two = [*TEST, Setting("inter", rate=0.5, mask_seed=7)]
    assert _validation("lnln", two) == _validation("lnln")  # other policies validate the same for any test


def test_an_unknown_policy_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="unknown policy 'paper'.*Valid policies: complete"):
        policy_class("paper")
