"""How far from converged a learning curve ends, on hand-made curves with known answers."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from cpvt_lab.analysis.convergence import late_gains


def curves(**runs) -> pd.DataFrame:
    """Long curves as ``frames.load_curves`` gives them, from ``run_id=(top1 per epoch, lr per epoch)``."""
    return pd.DataFrame([(run_id, e + 1, t, lr) for run_id, (top1, lrs) in runs.items()
                         for e, (t, lr) in enumerate(zip(top1, lrs))], columns=["run_id", "epoch", "top1", "lr"])


def test_late_gains_over_the_last_tenth_and_the_second_half_and_the_final_lr_fraction():
    ten = [10.0 * e for e in range(1, 11)]                       # 10 points an epoch
    twenty = [50.0 + e for e in range(1, 21)]                    # 1 point an epoch
    warmup_then_decay = [0.5, 1.0, 0.9, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05, 0.01]
    gains = late_gains(curves(a=(ten, warmup_then_decay), b=(twenty, [2.0] * 19 + [0.02]))).set_index("run_id")
    assert gains.loc["a"].to_dict() == {"epochs": 10, "last_from": 9, "last_gain": 10.0, "half_from": 5,
                                        "half_gain": 50.0, "final_lr_fraction": pytest.approx(0.01)}
    assert gains.loc["b", ["last_from", "last_gain", "half_from", "half_gain"]].tolist() == [18, 2.0, 10, 10.0]
    assert gains.loc["b", "final_lr_fraction"] == pytest.approx(0.01)


@pytest.mark.parametrize("epochs, last_from, half_from", [(2, 1, 1), (9, 8, 4), (15, 14, 7), (25, 23, 12),
                                                          (100, 90, 50)])
def test_the_last_tenth_is_whole_epochs_and_at_least_one(epochs, last_from, half_from):
    gains = late_gains(curves(r=([float(e) for e in range(1, epochs + 1)], [1.0] * epochs)))
    assert gains.loc[0, ["last_from", "half_from"]].tolist() == [last_from, half_from]
    assert (gains.loc[0, "last_gain"], gains.loc[0, "half_gain"]) == (epochs - last_from, epochs - half_from)


def test_a_one_epoch_curve_has_no_gain_and_no_curves_give_no_lines():
    one = late_gains(curves(r=([30.0], [0.1]))).loc[0]
    assert math.isnan(one.last_gain) and math.isnan(one.half_gain) and one.final_lr_fraction == 1.0
    assert late_gains(curves()).empty
