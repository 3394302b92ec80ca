"""How often each recorded operator's extracted values equal the truth the dataset publishes.

The guarantees are stated against the gold operator; where a dataset has real truth (rotowire's box scores,
ecommerce's product attributes: the `label` of a workload's extract), this measures the operators themselves
against it, the gold operator included, from the recording (no model runs):

    results/truth_<workload>.csv   extract, label, operator, rows, known (share of rows whose truth is given),
                                   answered (share the operator gave a value for), right_known (share of the
                                   rows with a known truth it answered exactly), right (share of all rows: a
                                   missing truth, "the report does not say", is right only when the operator
                                   gives no value either)

    results/truth_<workload>_filters.csv   the filters with a `label` (rotowire's box scores: the winner, whose
                                   total points exceed the other team's in the same game, both published; a
                                   statistic above the filter's number), on the rows whose truth is known: per
                                   operator, the AUC of its score and, for the gold operator, the share of rows
                                   it says yes to and its accuracy

    .venv/bin/python scripts/truth_accuracy.py --workload rotowire_teams
    .venv/bin/python scripts/truth_accuracy.py --workload rotowire_players
    .venv/bin/python scripts/truth_accuracy.py --workload ecommerce

Values compare as the runs compare them (`stretto.plan.answers.same_answer`: numbers by value, text ignoring case
and spacing). Plans that answer an extract with the gold operator (or with a cheaper one certified to agree with
it) are about as precise against the truth as the gold operator is right.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from stretto.api import family_spec, operator_source
from stretto.data.datasets import load_dataset
from stretto.execution.gold import gold_decisions
from stretto.plan.answers import same_answer
from stretto.plan.query import Query
from stretto.plan.template import parse_template
from stretto.plan.workload import Workload
from stretto.profiling.profile import row_keys

ROOT = Path(__file__).resolve().parents[1]


def accuracy(truth: pd.Series, values: pd.Series) -> dict[str, float]:
    """Shares of rows: with a known truth, answered, right among the known, right among all."""
    known, answered = truth.notna().to_numpy(), values.map(given).to_numpy()
    right = pd.Series([same_answer(v, t) for v, t in zip(values, truth, strict=True)], dtype=bool).to_numpy()
    return {
        "rows": len(truth),
        "known": known.mean(),
        "answered": answered.mean(),
        "right_known": right[known].mean() if known.any() else float("nan"),
        "right": right.mean(),
    }


def given(value: object) -> bool:
    """The operator gave a value (not None, NaN or blank)."""
    return not pd.isna(value) and str(value).strip() != ""


def by_operator(recorded: pd.DataFrame, template: str, keys, column: str):
    """(operator, its recorded `column` on each row of `keys`, NaN where it did not answer) for one predicate."""
    for operator, answers in recorded[recorded["template"] == template].groupby("operator"):
        yield operator, answers.drop_duplicates("row_key").set_index("row_key")[column].reindex(keys)


def measure(name: str) -> pd.DataFrame:
    """Per (labelled extract, recorded operator) of a workload: `accuracy` against its truth, on every row."""
    config = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "workload" / f"{name}.yaml"))
    workload = Workload.of(config)
    table = workload.relation(load_dataset(workload.dataset)).df
    recorded = pd.read_parquet(
        ROOT / "recordings" / f"{name}.parquet", columns=["row_key", "template", "operator", "value"]
    )
    rows = []
    for extract in (e for e in config.get("extracts") or [] if e.get("label")):
        template = parse_template(extract["template"])
        keys, truth = row_keys(table, template), table[extract["label"]].reset_index(drop=True)
        answered = recorded[recorded["template"] == extract["template"]].groupby("operator")["row_key"].agg(set)
        for operator, values in by_operator(recorded, extract["template"], keys, "value"):
            if not set(keys) <= answered[operator]:
                continue  # a recording of part of the table: measured once it covers every row
            rows.append({"extract": template.output, "label": extract["label"], "operator": operator}
                        | accuracy(truth, values.reset_index(drop=True)))  # fmt: skip
    return pd.DataFrame(rows)


def filter_truth(name: str) -> pd.DataFrame:
    """Per (labelled filter, recorded operator) of a workload, on the rows whose truth is known: the AUC of the
    operator's score against the truth, and for the gold operator the share of rows it says yes to and its
    accuracy (its decision at its threshold)."""
    workload = Workload.of(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "workload" / f"{name}.yaml")))
    table = workload.relation(load_dataset(workload.dataset))
    recording = ROOT / "recordings" / f"{name}.parquet"
    recorded = pd.read_parquet(recording, columns=["row_key", "template", "score", "operator"])
    spec = family_spec("default")
    source = operator_source(spec, "replay", recording=recording)
    rows = []
    for f in (f for f in workload.filters if f.label is not None):
        known = f.label.known(table.df).to_numpy()
        truth = f.label.truth(table.df).to_numpy()[known]
        gold = gold_decisions(table, Query(table.name, (f,)), source, spec)[0]
        keys = row_keys(table.df, f.template)
        for operator, scores in by_operator(recorded, f.template.text, keys, "score"):
            if scores.isna().any():
                continue  # a recording of part of the table: measured once it covers every row
            row = {"filter": f.template.text, "operator": operator, "rows_known": int(known.sum()),
                   "true_share": truth.mean(), "auc": roc_auc_score(truth, scores.to_numpy()[known])}  # fmt: skip
            if operator == spec.gold_identity:
                row |= {"gold_yes_share": gold[known].mean(), "gold_accuracy": (gold[known] == truth).mean()}
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="rotowire_teams", help="a file in conf/workload/ with a recording")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    recording = ROOT / "recordings" / f"{args.workload}.parquet"
    if not recording.exists():
        parser.error(f"no recording {recording}: make it with scripts/record_scores.py --workload {args.workload}")
    frame = measure(args.workload)
    if frame.empty:
        parser.error(f"{recording} holds no labelled extract on every row of workload {args.workload}")
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / f"truth_{args.workload}.csv", index=False, float_format="%.4f")
    print(frame.to_string(index=False, float_format="{:.3f}".format))
    filters = filter_truth(args.workload)
    if not filters.empty:
        filters.to_csv(args.out / f"truth_{args.workload}_filters.csv", index=False, float_format="%.4f")
        print(filters.to_string(index=False, float_format="{:.3f}".format))


if __name__ == "__main__":
    main()
