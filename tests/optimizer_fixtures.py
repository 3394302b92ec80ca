"""A synthetic workload for optimizer tests: a table, a recording of every operator on it, and its family."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.engine import plan_problem, profile_query
from stretto.operators.family import FamilySpec, ReplayFamily
from stretto.optimizer.certify import plan_counts
from stretto.plan.query import Query
from stretto.plan.targets import Targets
from stretto.plan.template import Template
from stretto.profiling.operator import OperatorId
from stretto.profiling.profile import Profile, row_keys
from stretto.profiling.sample import profiling_sample

FAMILY = {
    "models": [
        {"model": "qwen-0.5b", "variants": [{"press": "none", "ratio": 0.0}, {"press": "knorm", "ratio": 0.5}]},
        {"model": "qwen-1.5b", "variants": [{"press": "none", "ratio": 0.0}]},
    ],
    "gold": {"model": "qwen-1.5b", "press": "none", "ratio": 0.0},
}
TEMPLATES = ("{text} is about cats", "{text} is friendly", "{text} is short")
EXTRACT = "the [animal] (cat/dog/bird) in {text}"
ANIMALS = np.array(["cat", "dog", "bird"], dtype=object)


def extract_records(table, spec, rng, costs) -> pd.DataFrame:
    """Every operator's answers to EXTRACT: gold's value is the truth; cheap extractors are right more often
    when they are surer (log-probability), the better one more so."""
    n = len(table)
    keys = row_keys(table.df, Template(EXTRACT))
    truth = ANIMALS[rng.integers(0, 3, n)]
    frames = []
    for op in spec.identities:
        if op == spec.gold_identity:
            values, score = truth, np.full(n, -0.1)
        else:
            skill = 0.8 if OperatorId.parse(op).full_cache else 0.6
            right = rng.random(n) < skill
            values = np.where(right, truth, ANIMALS[(np.searchsorted(ANIMALS, truth) + 1) % 3])
            values = np.where(rng.random(n) < 0.05, None, values)  # sometimes 'none'
            score = np.where(right, -0.2, -1.5) + rng.normal(size=n) * 0.5
        frames.append(
            pd.DataFrame(
                {
                    "row_key": keys,
                    "template": EXTRACT,
                    "operator": op,
                    "score": score.astype(np.float32),
                    "seconds": costs[op] * 3,
                    "tokens": 20,
                    "value": list(values),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def synthetic(n: int = 400, seed: int = 0, rates=(0.5, 0.6, 0.7), extract: bool = False):
    """Table, query over all templates, family spec and a replay source; cheap operators of graded quality."""
    rng = np.random.default_rng(seed)
    table = Table("docs", pd.DataFrame({"text": [f"document {i}" for i in range(n)]}), text_columns=["text"])
    spec = FamilySpec.of(FAMILY)
    cheap = [i for i in spec.identities if i != spec.gold_identity]
    costs = {cheap[0]: 0.010, cheap[1]: 0.006, spec.gold_identity: 0.100}
    quality = {cheap[0]: 1.6, cheap[1]: 0.8}
    frames = []
    for text, rate in zip(TEMPLATES, rates, strict=True):
        template = Template(text)
        keys = row_keys(table.df, template)
        label = rng.random(n) < rate
        sign = np.where(label, 1.0, -1.0)
        for op in spec.identities:
            score = sign * (np.abs(rng.normal(size=n)) + 0.5) if op == spec.gold_identity else sign * quality[op]
            if op != spec.gold_identity:
                score = score + rng.normal(size=n) * 1.5 - 0.7
            frames.append(
                pd.DataFrame(
                    {
                        "row_key": keys,
                        "template": text,
                        "operator": op,
                        "score": score.astype(np.float32),
                        "seconds": costs[op],
                        "tokens": 20,
                    }
                )
            )
    if extract:
        frames.append(extract_records(table, spec, rng, costs))
    recording = Profile(pd.concat(frames, ignore_index=True))
    query = Query.of("docs", [{"template": t} for t in TEMPLATES], [{"template": EXTRACT}] if extract else [])
    return table, query, spec, ReplayFamily(spec, recording), recording


def problem_for(n_filters=2, targets=None, fraction=0.25, seed=0, extract=False):
    targets = targets or Targets(0.7, 0.7, 0.95)
    table, query, spec, source, _ = synthetic(extract=extract)
    query = Query(query.table, query.filters[:n_filters], query.extracts)
    sample = profiling_sample(len(table), fraction, seed)
    profile = profile_query(table, query, source, spec, sample=sample, progress=False)
    return plan_problem(table, query, spec, profile, sample, targets), table, query, spec, source, sample, profile


def whole_result_quality(plan, table, query, spec, source, sample, targets) -> tuple[float, float]:
    """The truth about a plan: (precision, recall) of its result on the whole table against the gold operator,
    with gold answering the sample's rows and the plan the rest (its forcing draws seeded)."""
    everything = np.arange(len(table))
    profile = profile_query(table, query, source, spec, sample=everything, progress=False)
    full = plan_problem(table, query, spec, profile, everything, targets)
    c = plan_counts(full.subset(np.setdiff1d(everything, sample)), plan, np.random.default_rng(0))
    positives = int(full.subset(np.asarray(sample)).labels.sum())
    return (c.tp + positives) / (c.kept + positives), (c.tp + positives) / (c.positives + positives)
