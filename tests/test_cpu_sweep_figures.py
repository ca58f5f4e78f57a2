"""The validation sweep's figures in docs/cpu_study.md are what its committed rows give (the recipe rests on them)."""
import json
import re
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "results" / "cpu_sweep_val" / "runs.jsonl"


def validation_top1(lr: float) -> dict[int, float]:
    """Seed -> val_top1 of the peg rows at ``lr`` with the study's other settings (no drop-path, warm-up 0.3)."""
    rows = [json.loads(line) for line in ROWS.read_text().splitlines() if line.strip()]
    return {r["seed"]: r["val_top1"] for r in rows if r["status"] == "ok" and r["ablation"] == "peg"
            and r["config"]["optim"]["lr"] == lr and r["config"]["model"]["drop_path"] == 0
            and r["config"]["optim"]["warmup_epochs"] == 0.3 and r["config"]["optim"]["label_smoothing"] == 0.1}


def test_every_sweep_row_was_scored_on_a_validation_split_and_read_no_test_image_first():
    rows = [json.loads(line) for line in ROWS.read_text().splitlines() if line.strip()]
    assert rows and all(r["config"]["data"]["val_split"] == 5000 and r["curve_split"] == "validation"
                        and r["val_top1"] == r["curve"]["top1"][-1] for r in rows)


def test_the_docs_give_the_paired_lead_of_4e3_over_3e3_as_the_rows_do():
    page = " ".join((ROOT / "docs" / "cpu_study.md").read_text().split())
    low, high = validation_top1(3e-3), validation_top1(4e-3)
    seeds = sorted(set(low) & set(high))
    assert seeds == [0, 1, 2]
    for lr, values in (("lr3e-3", low), ("lr4e-3", high)):
        cells = " | ".join(f"{values[s]:.2f}" for s in [*seeds]) + f" | {np.mean(list(values.values())):.2f} |"
        assert re.search(rf"\| \**{lr}\**[^|]*\|( [^|]* \|){{4}} {re.escape(cells)}", page), lr
    diffs = np.array([high[s] - low[s] for s in seeds])
    half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
    mean = diffs.mean()
    assert f"+{mean:.2f} points, 95% interval [{mean - half:+.2f}, {mean + half:+.2f}]" in page
