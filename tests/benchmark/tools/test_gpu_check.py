"""The GPU check runs on the CPU, and its proxy counts the calls that would make a GPU's host wait."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from msabench.tools import gpu_check


def test_proxy_counts_synchronising_calls_by_site_and_restores_them() -> None:
    sites: Counter[str] = Counter()
    flag, values = torch.tensor(True), torch.tensor([0.0, 2.0])
    with gpu_check.cpu_sync_proxy(sites):
        assert bool(flag)  # the calls still work
        assert values.nonzero().shape == (1, 1)
        assert values.sum().item() == 2.0
    assert sum(sites.values()) == 3
    assert all("test_gpu_check.py" in site for site in sites)
    bool(flag), values.tolist()  # outside the block nothing is counted
    assert sum(sites.values()) == 3


def test_check_runs_every_case_of_a_method_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    threads = torch.get_num_threads()
    try:
        status = gpu_check.main(["--smoke", "--methods", "lf_dnn", "--steps", "2"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    policies = {policy for policy, _ in gpu_check.CASES}
    table = [line for line in out.splitlines() if line.startswith("lf_dnn ") and line.split()[1] in policies]
    rows = {tuple(line.split()[1:3]): line for line in table}
    assert set(rows) == {(policy, setting.name) for policy, setting in gpu_check.CASES}
    for (policy, setting), line in rows.items():
        outcome = line.split(maxsplit=4)[4]
        # The method's own step never synchronises; a policy that drops tokens re-encodes the text with
        # Hugging Face's BERT, whose padding-mask check may (reported, not an error).
        matched_intra = policy == "matched" and setting.startswith("intra")
        drops_tokens = policy in ("lnln", "stochastic") or matched_intra
        assert outcome == "ok" or (drops_tokens and outcome.startswith("host sync: ")), line
        assert "network.py" not in outcome and "base.py" not in outcome
        assert float(line.split()[3]) > 0  # steps per second after the warm-up step
    assert status == (0 if all(line.endswith("ok") for line in rows.values()) else 1)
