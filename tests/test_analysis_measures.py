"""The equivariance, probe and interval measures agree with cases whose answer is known."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from cpvt_lab import paper
from cpvt_lab.analysis.verdicts import claims, stats
from cpvt_lab.analysis.measures import equivariance, probe
from cpvt_lab.analysis.pages import markdown
from cpvt_lab.models import CPVTViT

# the smoke geometry (patch 4, 8 x 8 grid, 12 blocks) of these ablations, untrained
ENCODINGS = {
    "none": ({"name": "none"}, "cls"), "none_gap": ({"name": "none"}, "gap"), "learned": ({"name": "learned"}, "cls"),
    "peg": ({"name": "peg", "padding": "zeros"}, "cls"), "peg_nopad": ({"name": "peg", "padding": "none"}, "cls"),
    "peg_circular": ({"name": "peg", "padding": "circular"}, "cls"),
}


def model_of(ablation: str, seed: int = 0) -> CPVTViT:
    torch.manual_seed(seed)
    pos, head = ENCODINGS[ablation]
    return CPVTViT(pos=pos, head=head, size="smoke", img_size=32).eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, 32, 32, generator=g), torch.randint(0, 10, (6,), generator=g)


# ------------------------------------------------------------------ equivariance
def test_zero_fill_shift_moves_content_and_fills_with_zeros():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    shifted = equivariance.shift_images(x, 1)
    assert torch.equal(shifted[0, 0, 1:, 1:], x[0, 0, :3, :3])
    assert shifted[0, 0, 0].abs().sum() == 0 and shifted[0, 0, :, 0].abs().sum() == 0


def test_no_encoding_with_gap_is_exactly_equivariant_under_cyclic_whole_patch_shifts(images):
    table = equivariance.measure(model_of("none_gap"), *images, shifts=[4, 8], fill="cyclic")
    errors = table[table.measure == "equivariance_error"]
    assert len(errors) == 2 * 12 and errors.value.max() < 1e-5
    assert (table[table.measure == "consistency"].value == 100.0).all()


def test_a_learned_table_breaks_equivariance(images):
    table = equivariance.measure(model_of("learned"), *images, shifts=[4], fill="cyclic")
    assert table[table.measure == "equivariance_error"].value.min() > 1e-3


def test_sub_patch_shifts_report_predictions_only(images):
    table = equivariance.measure(model_of("peg"), *images, shifts=[1, 2, 4])
    measured = table.groupby("shift").measure.agg(set).to_dict()
    assert measured[1] == measured[2] == {"consistency", "accuracy"}
    assert measured[4] == {"consistency", "accuracy", "equivariance_error"}
    assert set(table.block[table.measure == "equivariance_error"]) == set(range(12))


def test_bad_shifts_and_fills_are_refused_before_any_work(images):
    with pytest.raises(ValueError, match="outside 1 .. 31"):
        equivariance.measure(model_of("none"), *images, shifts=[0])
    with pytest.raises(ValueError, match="fill must be one of"):
        equivariance.measure(model_of("none"), *images, fill="mirror")


# ------------------------------------------------------------------ probe
# A uniform image has no position in its content, so whatever the probe finds comes from the encoding.
# On it, an N-way probe can at best tell apart the groups of tokens the model leaves identical.
UNIFORM = torch.ones(6, 3, 32, 32) * torch.tensor([0.3, -0.2, 0.5]).view(1, 3, 1, 1)
CELLS = 64


@pytest.mark.parametrize("ablation, block, groups", [
    ("none", 5, 1),            # every token identical: chance, 1/64
    ("peg_circular", 5, 1),    # a circular conv of a constant is constant: no border, no position
    ("peg_nopad", 5, 2),       # border tokens skip the PEG: two groups
    ("peg", 5, 9),             # zero padding tells 4 corners, 4 edges and the interior apart: 9 of 64
])
def test_probe_finds_exactly_the_position_the_encoding_leaks_on_uniform_input(ablation, block, groups):
    table = probe.measure(model_of(ablation), UNIFORM, blocks=[block]).set_index("target")
    assert table.loc["position", "chance"] == pytest.approx(100 / CELLS)
    assert table.loc["position", "accuracy"] == pytest.approx(100 * groups / CELLS)


def test_probe_reads_a_learned_table_almost_perfectly():
    table = probe.measure(model_of("learned"), UNIFORM, blocks=[11]).set_index("target")
    assert table.loc["position", "accuracy"] > 95 and table.loc["position", "chance"] < 2


def test_probe_splits_over_images_not_tokens():
    train, test = probe.split_images(10, seed=3)
    assert len(train) == 5 and set(train).isdisjoint(test) and set(train) | set(test) == set(range(10))
    with pytest.raises(ValueError, match="at least 2 images"):
        probe.split_images(1)


# ------------------------------------------------------------------ intervals and verdicts
# Student's sleep data (Cushny & Peebles), R's `sleep`: t.test(extra ~ group, data = sleep) prints
# "t = -1.8608, df = 17.776, 95 percent confidence interval: -3.3654832 0.2054832", and
# t.test(extra[group == 1]) prints "95 percent confidence interval: -0.5297804 2.0297804".
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_t_interval_matches_the_textbook_sleep_example():
    s = stats.cell_summary(SLEEP_1)
    assert (s.n, s.mean) == (10, pytest.approx(0.75))
    assert (s.low, s.high) == (pytest.approx(-0.5297804, abs=1e-6), pytest.approx(2.0297804, abs=1e-6))


def test_welch_interval_matches_the_textbook_sleep_example():
    d = stats.welch_difference(SLEEP_1, SLEEP_2)
    assert d.diff == pytest.approx(-1.58)
    assert d.df == pytest.approx(17.776, abs=1e-3)
    assert (d.low, d.high) == (pytest.approx(-3.3654832, abs=1e-6), pytest.approx(0.2054832, abs=1e-6))


def test_paired_interval_matches_the_textbook_sleep_example():
    # R: t.test(extra ~ group, data = sleep, paired = TRUE): "t = -4.0621, df = 9,
    # 95 percent confidence interval: -2.4598858 -0.7001142"
    d = stats.paired_difference(SLEEP_1, SLEEP_2)
    assert (d.diff, d.df) == (pytest.approx(-1.58), 9)
    assert (d.low, d.high) == (pytest.approx(-2.4598858, abs=1e-6), pytest.approx(-0.7001142, abs=1e-6))
    assert stats.compare(SLEEP_2, SLEEP_1, "greater", paired=True)["verdict"] == "reproduced"  # Welch: inconclusive


@pytest.mark.parametrize("a, b, direction, margin, expected", [
    ([5, 6, 7], [1, 2, 3], "greater", 0, "reproduced"),      # A-B in [1.73, 6.27]
    ([5, 6, 7], [1, 2, 3], "greater", 3, "inconclusive"),    # the interval straddles the margin
    ([5, 6, 7], [1, 2, 3], "greater", 7, "contradicted"),    # "more than 7 points": wholly below
    ([1, 2, 3], [5, 6, 7], "greater", 0, "contradicted"),
    (SLEEP_2, SLEEP_1, "greater", 0, "inconclusive"),        # [-0.21, 3.37] straddles zero
    ([1, 2, 3], [1.1, 2.1, 2.9], "not_greater", 3, "reproduced"),
    ([5, 6, 7], [1, 2, 3], "not_greater", 1, "contradicted"),
])
def test_verdicts_follow_the_interval(a, b, direction, margin, expected):
    assert stats.compare(a, b, direction, margin)["verdict"] == expected


def test_fewer_than_three_seeds_is_inconclusive_whatever_the_interval_and_says_so():
    one = stats.compare([70.0], [60.0, 61.0], "greater")
    assert one["verdict"] == "inconclusive" and "(n < 3)" in one["reason"] and one["diff"] == pytest.approx(9.5)
    none = stats.compare([], [60.0, 61.0], "greater")
    assert none["reason"] == "no runs" and math.isnan(none["diff"])
    assert math.isnan(stats.cell_summary([3.0]).low)
    two = stats.compare([60.0, 61.0], [40.0, 41.0], "greater", test_images=(10_000, 10_000))
    assert two["diff_low"] > 0  # the interval alone would settle it ...
    assert two["verdict"] == "inconclusive" and two["reason"].startswith("inconclusive (n < 3): A has 2 seeds")
    three = stats.compare([60.0, 61.0, 60.5], [40.0, 41.0, 40.5], "greater", test_images=(10_000, 10_000))
    assert three["verdict"] == "reproduced"  # ... and with three seeds a cell it does


def test_zero_spread_over_seeds_is_no_certainty():
    # top-1 on 500 images comes in steps of 0.2 points: two seeds agreeing exactly is common
    same = stats.compare([20.4, 20.4], [20.2, 20.2], "greater", test_images=(500, 500))
    assert same["verdict"] == "inconclusive" and "(n < 3)" in same["reason"]
    assert same["diff_low"] < 0 < 0.2 < same["diff_high"]  # the test set alone leaves +-5 points
    three = stats.compare([20.4] * 3, [20.2] * 3, "greater", test_images=(500, 500))
    assert three["verdict"] == "inconclusive" and "straddles 0" in three["reason"]
    # with no spread the interval is the normal one of the two binomial terms
    half = 1.959964 * math.sqrt(1e4 * (0.204 * 0.796 + 0.202 * 0.798) / 500)
    assert (three["diff_low"], three["diff_high"]) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    cell = stats.cell_summary([19.2, 19.2], test_images=500)
    assert (cell.std, cell.high - cell.low) == (0.0, pytest.approx(2 * 1.959964 * math.sqrt(1e4 * 0.192 * 0.808 / 500)))
    # not knowing the test set, zero spread gives no interval at all, never [mean, mean]
    unknown = stats.compare([20.4, 20.4, 20.4], [20.2, 20.2, 20.2], "greater")
    assert unknown["verdict"] == "inconclusive" and math.isnan(unknown["diff_low"]) and "no interval" in unknown["reason"]
    assert math.isnan(stats.cell_summary([19.2, 19.2]).low)
    paired = stats.compare([20.4] * 3, [20.2] * 3, "greater", paired=True, test_images=(500, 500))
    assert paired["verdict"] == "inconclusive" and paired["diff_high"] - paired["diff_low"] > 5


def test_the_test_set_term_widens_the_seed_interval_with_welch_satterthwaite_degrees_of_freedom():
    a, b, m = [70.0, 71.0, 70.5], [65.0, 66.5, 65.2], 10_000
    seed_a, seed_b = pd.Series(a).var() / 3, pd.Series(b).var() / 3
    known = 1e4 * (0.705 * 0.295 + 0.655667 * 0.344333) / m
    d = stats.welch_difference(a, b, test_images=(m, m))
    total = seed_a + seed_b + known
    assert d.df == pytest.approx(total ** 2 / (seed_a ** 2 / 2 + seed_b ** 2 / 2), rel=1e-4)
    assert d.high - d.low == pytest.approx(2 * stats.sps.t.ppf(0.975, d.df) * math.sqrt(total), rel=1e-4)
    plain = stats.welch_difference(a, b)
    assert d.low < plain.low and d.high > plain.high


# ------------------------------------------------------------------ the paper's claims on made-up runs
def made_up_runs(test_images=None, none_seeds=(0, 1, 2)) -> pd.DataFrame:
    """learned beats none by ~5 points at 24 px over three seeds; learned loses 2 +- 0.1 points at 32 px."""
    lines = []
    for seed, (learned, none, drop) in enumerate([(70.0, 65.0, 2.0), (71.0, 66.5, 2.1), (70.5, 65.2, 1.9)]):
        for ablation, top1, run_seed in (("learned", learned, seed), ("none", none, none_seeds[seed])):
            for size, rank, value in ((24, 0, top1), (32, 1, top1 - drop)):
                lines.append(dict(run_id=f"{ablation}{run_seed}", ablation=ablation, seed=run_seed, scale="cifar",
                                  dataset="CIFAR-10, JPEG copy", epochs=100, train_size=24, model_size="vit_ti4",
                                  setting_id=f"{ablation}-setting", recipe_id="recipe", setting="cifar",
                                  ablation_label=ablation, size_px=size, size_rank=rank, top1=value,
                                  test_images=test_images, finetuned=False, unstable=False))
    return pd.DataFrame(lines)


def test_claims_get_paired_or_welch_verdicts_and_claims_without_runs_stay_listed():
    verdicts = claims.judge_claims(made_up_runs()).set_index("claim")
    assert set(verdicts.index) == {c.id for c in paper.CLAIMS}
    beats = verdicts.loc["t1_learned_beats_none"]  # two ablations trained with the same seeds: paired by seed
    assert (beats.verdict, beats.design, beats.a_n, beats.b_n) == ("reproduced", "paired by seed", 3, 3)
    per_seed = np.array([70.0 - 65.0, 71.0 - 66.5, 70.5 - 65.2])
    assert beats["diff"] == pytest.approx(per_seed.mean())
    assert beats.diff_low == pytest.approx(per_seed.mean() - 4.303 * per_seed.std(ddof=1) / 3 ** 0.5, abs=1e-3)
    loses = verdicts.loc["t1_learned_loses_larger"]  # the same runs at two sizes
    assert (loses.verdict, loses.design) == ("reproduced", "one run at two sizes")
    assert loses.diff_low == pytest.approx(2.0 - 4.303 * 0.1 / 3 ** 0.5, abs=1e-3)
    assert verdicts.loc["pos_0_beats_10", "reason"] == "no runs"
    text = markdown.claims_markdown(verdicts.reset_index(), "made_up")
    assert "2 reproduced, 0 contradicted" in text and "## Claims without any runs" in text
    # seeds not shared: two independent samples, Welch's interval
    apart = claims.judge_claims(made_up_runs(none_seeds=(3, 4, 5))).set_index("claim").loc["t1_learned_beats_none"]
    welch = stats.welch_difference([70.0, 71.0, 70.5], [65.0, 66.5, 65.2])
    assert (apart.design, apart.diff_low, apart.diff_high) == ("unpaired (Welch)", welch.low, welch.high)
    # measured on 500 test images, a 2-point loss at the larger size is no longer settled: the binomial terms
    # of both sizes apply to the paired difference, however alike the seeds' differences are
    on_500 = claims.judge_claims(made_up_runs(test_images=500)).set_index("claim")
    assert on_500.loc["t1_learned_loses_larger", "verdict"] == "inconclusive"
    assert on_500.loc["t1_learned_beats_none", "verdict"] == "inconclusive"  # +-2 points a cell from the test set
    assert on_500.loc["t1_learned_beats_none", "a_images"] == 500
    on_10k = claims.judge_claims(made_up_runs(test_images=10_000)).set_index("claim")
    assert set(on_10k.loc[["t1_learned_loses_larger", "t1_learned_beats_none"], "verdict"]) == {"reproduced"}
