"""Opt-in (`make lotus-test`, after `make lotus-env`): stretto's LOTUS port against the real lotus-ai 1.2.4.

lotus-ai needs numpy<2 and transformers<5, so it runs in its own .venv-lotus, through scripts/lotus_original.py,
on the same seeded arrays. Each port function gets the inputs the original function got, as LOTUS's sem_filter
chains them: calibrate the scores, importance-sample the calibrated scores, learn the thresholds on the sample
(calibrated scores, labels and correction factors at the drawn indices). Every mismatch is listed with its case.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stretto.baselines.lotus import calibrate, importance_sample, learn_thresholds, quantile_edges

pytestmark = pytest.mark.lotus

ROOT = Path(__file__).resolve().parents[1]
LOTUS_PYTHON = ROOT / os.environ.get("LOTUS_VENV", ".venv-lotus") / "bin" / "python"
SCRIPT = ROOT / "scripts" / "lotus_original.py"
TOL = 1e-12

SIZES = [60, 200, 1000]
DISTRIBUTIONS = ["uniform", "skewed"]
POSITIVE_RATES = [0.1, 0.7]
TARGETS = [(0.5, 0.9), (0.7, 0.7), (0.9, 0.5)]  # (precision, recall)
FAILURE_PROBABILITIES = [0.05, 0.2]
QUANTILES = [50, 10]
SEEDS = [0, 1, 7, 2024]
IS_WEIGHTS = [0.9, 0.5]
# (sampling_percentage, cascade_IS_max_sample_range): LOTUS's defaults; the whole table (stretto's use); half of 100
SAMPLINGS = [(0.1, 200), (1.0, 10**6), (0.5, 100)]


def make_cases() -> list[dict]:
    cases = []
    grid = itertools.product(SIZES, DISTRIBUTIONS, POSITIVE_RATES, TARGETS, FAILURE_PROBABILITIES, QUANTILES)
    for k, (n, dist, rate, (precision, recall), delta, quantiles) in enumerate(grid):
        rng = np.random.default_rng(k)
        scores = rng.random(n) if dist == "uniform" else rng.beta(0.4, 2.0, n)
        # labels follow the scores' ranks, with noise, at the given positive rate
        noisy = np.argsort(np.argsort(scores)) / n + 0.25 * rng.standard_normal(n)
        labels = noisy >= np.quantile(noisy, 1 - rate)
        sampling, sample_range = SAMPLINGS[k % len(SAMPLINGS)]
        seed, is_weight = SEEDS[k % len(SEEDS)], IS_WEIGHTS[(k // len(SEEDS)) % len(IS_WEIGHTS)]
        name = (
            f"n{n}-{dist}-pos{rate}-p{precision}r{recall}-delta{delta}-q{quantiles}"
            f"-seed{seed}-w{is_weight}-sample{sampling}/{sample_range}"
        )
        cases.append(
            {
                "name": name,
                "scores": scores.tolist(),
                "labels": labels.tolist(),
                "quantiles": quantiles,
                "is_weight": is_weight,
                "sampling_percentage": sampling,
                "max_sample_range": sample_range,
                "seed": seed,
                "precision_target": precision,
                "recall_target": recall,
                "failure_probability": delta,
            }
        )
    return cases


@pytest.fixture(scope="module")
def compared() -> list[tuple[dict, dict]]:
    """(case, the real lotus-ai's outputs on it) for every case."""
    if not LOTUS_PYTHON.exists():
        pytest.skip(f"no lotus-ai virtualenv at {LOTUS_PYTHON.parent.parent}: run `make lotus-env` first")
    cases = make_cases()
    run = subprocess.run(
        [str(LOTUS_PYTHON), str(SCRIPT)],
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    out = json.loads(run.stdout)
    assert out["lotus_version"] == "1.2.4", out["lotus_version"]
    print(f"lotus-ai {out['lotus_version']}, numpy {out['numpy_version']}: {len(cases)} cases", file=sys.stderr)
    return list(zip(cases, out["results"], strict=True))


def test_calibrate_matches_calibrate_llm_logprobs(compared):
    mismatches = []
    for case, original in compared:
        scores = np.array(case["scores"])
        port = calibrate(scores, quantile_edges(scores, case["quantiles"]))
        expected = np.array(original["calibrated"])
        if port.shape != expected.shape or np.max(np.abs(port - expected)) > TOL:
            mismatches.append((case["name"], port.tolist(), expected.tolist()))
    assert not mismatches, f"{len(mismatches)}/{len(compared)} cases differ (name, port, lotus-ai): {mismatches[:3]}"


def test_importance_sample_matches_importance_sampling(compared):
    mismatches = []
    for case, original in compared:
        indices, correction = importance_sample(
            np.array(original["calibrated"]),
            case["is_weight"],
            case["sampling_percentage"],
            case["max_sample_range"],
            case["seed"],
        )
        expected_correction = np.array(original["correction"])
        if indices.tolist() != original["indices"]:
            mismatches.append((case["name"], "indices", indices.tolist(), original["indices"]))
        elif correction.shape != expected_correction.shape or np.max(np.abs(correction - expected_correction)) > TOL:
            mismatches.append((case["name"], "correction", correction.tolist(), original["correction"]))
    assert not mismatches, (
        f"{len(mismatches)}/{len(compared)} cases differ (name, what, port, lotus-ai): {mismatches[:3]}"
    )


def test_learn_thresholds_matches_learn_cascade_thresholds(compared):
    mismatches = []
    for case, original in compared:
        drawn = np.array(original["indices"], dtype=int)
        tau_pos, tau_neg = learn_thresholds(
            np.array(original["calibrated"])[drawn],
            np.array(case["labels"])[drawn],
            np.array(original["correction"])[drawn],
            case["precision_target"],
            case["recall_target"],
            case["failure_probability"],
        )
        if abs(tau_pos - original["pos"]) > TOL or abs(tau_neg - original["neg"]) > TOL:
            mismatches.append((case["name"], (tau_pos, tau_neg), (original["pos"], original["neg"])))
    assert not mismatches, f"{len(mismatches)}/{len(compared)} cases differ (name, port, lotus-ai): {mismatches}"


def test_the_cases_cover_the_interesting_branches(compared):
    """Guards the grid itself: some samples hold no positive, thresholds vary, stretto's full-table sample is in."""
    taus = {(r["pos"], r["neg"]) for _, r in compared}
    assert len(compared) == 144 and len(taus) > 10
    assert any(not np.array(c["labels"])[r["indices"]].any() for c, r in compared)
    assert any(c["sampling_percentage"] == 1.0 and c["max_sample_range"] >= len(c["scores"]) for c, _ in compared)
