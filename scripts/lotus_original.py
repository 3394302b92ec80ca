"""The real lotus-ai 1.2.4's cascade thresholds on given arrays, for tests/test_lotus_original.py.

Run by `.venv-lotus/bin/python` (`make lotus-env`), never by stretto's venv: lotus-ai needs numpy<2 and
transformers<5. It does not import stretto.

    .venv-lotus/bin/python scripts/lotus_original.py [cases.json]   (default: stdin)

Input: {"cases": [{"scores", "labels", "quantiles", "is_weight", "sampling_percentage", "max_sample_range",
"seed", "precision_target", "recall_target", "failure_probability"}, ...]}, one score and label per row.
Each case runs the steps of LOTUS's sem_filter cascade: calibrate_llm_logprobs on the scores, importance_sampling
on the calibrated scores, learn_cascade_thresholds on the sample (calibrated scores, labels and correction factors
at the drawn indices). Output on stdout: {"lotus_version", "numpy_version", "results": [{"calibrated", "indices",
"correction", "pos", "neg"}, ...]}, in the cases' order.
"""

import json
import os
import sys
from importlib.metadata import version

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm, imported by lotus, would go online

import numpy as np
from lotus.sem_ops.cascade_utils import (
    calibrate_llm_logprobs,
    importance_sampling,
    learn_cascade_thresholds,
)
from lotus.types import CascadeArgs


def run_case(case: dict) -> dict:
    args = CascadeArgs(
        recall_target=case["recall_target"],
        precision_target=case["precision_target"],
        sampling_percentage=case["sampling_percentage"],
        failure_probability=case["failure_probability"],
        cascade_IS_weight=case["is_weight"],
        cascade_num_calibration_quantiles=case["quantiles"],
        cascade_IS_max_sample_range=case["max_sample_range"],
        cascade_IS_random_seed=case["seed"],
    )
    calibrated = calibrate_llm_logprobs(case["scores"], args)
    indices, correction = importance_sampling(calibrated, args)
    (pos, neg), _ = learn_cascade_thresholds(
        proxy_scores=[calibrated[i] for i in indices],
        oracle_outputs=[bool(case["labels"][i]) for i in indices],
        sample_correction_factors=correction[indices],
        cascade_args=args,
    )
    return {
        "calibrated": [float(x) for x in calibrated],
        "indices": [int(i) for i in indices],
        "correction": [float(x) for x in correction],
        "pos": float(pos),
        "neg": float(neg),
    }


def main() -> None:
    with open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin as f:
        cases = json.load(f)["cases"]
    out = {
        "lotus_version": version("lotus-ai"),
        "numpy_version": np.__version__,
        "results": [run_case(c) for c in cases],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
