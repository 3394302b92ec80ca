"""How often each recorded operator's extracted values equal the truth the dataset publishes.

The guarantees are stated against the gold operator; where a dataset has real truth (rotowire's box scores,
ecommerce's product attributes: the `label` of a workload's extract), this measures the operators themselves
against it, the gold operator included, from the recording (no model runs):

    results/truth_<workload>.csv   extract, label, operator, rows, known (share of rows whose truth is given),
                                   answered (share the operator gave a value for), right_known (share of the
                                   rows with a known truth it answered exactly), right (share of all rows: a
                                   missing truth, "the report does not say", is right only when the operator
                                   gives no value either)

    results/truth_<workload>_won.csv   rotowire only: the filters "won the game" / "lost the game" against the
                                   box scores (a team won when its total points exceed its opponent's in the
                                   same game, both published): per operator, the AUC of its score and, for the
                                   gold operator, the share of pairs it says yes to and its accuracy

    .venv/bin/python scripts/truth_accuracy.py --workload rotowire_teams
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


def box_score_won(pairs: pd.DataFrame) -> pd.Series:
    """Per (team, game) pair: its total points exceed the other team's in that game (NA unless both are given)."""
    points = pairs["Total_points_truth"].astype("Float64")
    game = points.groupby(pairs["game_id"])
    both = game.transform("count").eq(2) & points.notna()
    return (points > game.transform("sum") - points).where(both).astype("boolean")


def won_filters(name: str) -> pd.DataFrame:
    """Rotowire's won / lost filters against the box-score winner: AUC per operator, the gold decision's yes share
    and accuracy (pairs whose winner is known)."""
    workload = Workload.of(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "workload" / f"{name}.yaml")))
    table = workload.relation(load_dataset(workload.dataset))
    won = box_score_won(table.df).reset_index(drop=True)
    known = won.notna().to_numpy()
    recording = ROOT / "recordings" / f"{name}.parquet"
    recorded = pd.read_parquet(recording, columns=["row_key", "template", "score", "operator"])
    spec = family_spec("default")
    source = operator_source(spec, "replay", recording=recording)
    rows = []
    for f in workload.filters:
        says = "won" if " won the game" in f.template.text else "lost" if " lost the game" in f.template.text else None
        if says is None:
            continue
        truth = won[known].to_numpy(bool) == (says == "won")
        gold = gold_decisions(table, Query.of(table.name, [{"template": f.template.text}]), source, spec)[0]
        keys = row_keys(table.df, f.template)
        for operator, scores in by_operator(recorded, f.template.text, keys, "score"):
            score = scores.to_numpy()
            row = {"filter": f.template.text, "operator": operator, "pairs_known": int(known.sum()),
                   "true_share": truth.mean(), "auc": roc_auc_score(truth, score[known])}  # fmt: skip
            if operator == spec.gold_identity:
                row |= {"gold_yes_share": gold.mean(), "gold_accuracy": (gold[known] == truth).mean()}
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
    if args.workload == "rotowire_teams":
        won = won_filters(args.workload)
        won.to_csv(args.out / f"truth_{args.workload}_won.csv", index=False, float_format="%.4f")
        print(won.to_string(index=False, float_format="{:.3f}".format))


if __name__ == "__main__":
    main()
