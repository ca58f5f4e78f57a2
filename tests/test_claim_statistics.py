"""The statistics of the claims: seed pairing, the test-set term from per-image predictions, p-values and Holm.

The by-hand computations here use scipy.stats.t and numpy only, not the project's statistics code.
"""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
from scipy.stats import t as student_t

from cpvt_lab import predictions
from cpvt_lab.analysis.pages import markdown, plots
from cpvt_lab.analysis.verdicts import stats
from cpvt_lab.analysis.folder import ResultsFolder
from cpvt_lab.analysis.pages.page_parts import provenance
from cpvt_lab.analysis.verdicts.test_set_term import measured
from cpvt_lab.results import append_row
from conftest import made_row

matplotlib.use("Agg")
M = 2_000  # test images
TOP1 = {"learned": 0.62, "none": 0.55}


def row(ablation, seed, top1, **extra):
    """A row as a run at CPU scale records it (its config and the run_id that gives), scored on M test images."""
    return made_row(ablation, seed, {24: top1}, scale="cpu", epochs=4, test_images=M, **extra)


def synthetic_folder(folder, seeds=(0, 1, 2), with_predictions=(0, 1, 2)):
    """learned and none trained with the same seeds, scored on the same M images: an image's difficulty is shared
    by every model, so the two cells' correct answers are correlated image by image."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 10, M)
    difficulty = rng.uniform(size=M)
    correct = {}
    for seed in seeds:
        for ablation, top1 in TOP1.items():
            noise = rng.uniform(size=M)
            hit = 0.7 * difficulty + 0.3 * noise < top1 + 0.02 * rng.standard_normal()
            correct[ablation, seed] = hit
            made = row(ablation, seed, round(100.0 * hit.mean(), 3))
            append_row(folder, made)
            if seed in with_predictions:
                predictions.save(folder, made["run_id"], labels, {24: np.where(hit, labels, (labels + 1) % 10)})
    return correct


def by_hand(correct, seeds, term_seeds):
    """The paired claim learned - none at 24 px: mean per-seed difference, seed part s^2/n, test-set term
    var_i(d_i)/m over the seeds with predictions, Welch-Satterthwaite df, the interval and the two-sided p."""
    per_seed = np.array([100 * (correct["learned", s].mean() - correct["none", s].mean()) for s in seeds])
    n, mean = len(per_seed), per_seed.mean()
    seed_part = per_seed.var(ddof=1) / n
    d = 100 * np.mean([correct["learned", s].astype(float) - correct["none", s] for s in term_seeds], axis=0)
    image_part = d.var(ddof=1) / M
    total = seed_part + image_part
    df = total ** 2 / (seed_part ** 2 / (n - 1))
    half = student_t.ppf(0.975, df) * math.sqrt(total)
    return dict(diff=mean, low=mean - half, high=mean + half, df=df, term=image_part,
                p=2 * student_t.sf(abs(mean) / math.sqrt(total), df))


def claim_line(folder):
    return ResultsFolder(folder).claims.set_index("claim").loc["t1_learned_beats_none"]


def test_a_paired_claim_is_what_a_hand_computation_from_rows_and_predictions_gives(tmp_path):
    correct = synthetic_folder(tmp_path)
    line, hand = claim_line(tmp_path), by_hand(correct, (0, 1, 2), (0, 1, 2))
    assert (line.design, line.test_set_source) == ("paired by seed", "predictions of all 3 pairs")
    for ours, key in (("diff", "diff"), ("diff_low", "low"), ("diff_high", "high"), ("df", "df"),
                      ("test_set_term", "term"), ("p", "p")):
        assert line[ours] == pytest.approx(hand[key], rel=1e-6), ours
    # the images are shared: the measured term is well below the two binomial terms added as if independent
    independent = sum(1e4 * p * (1 - p) / M for p in (line.a_mean / 100, line.b_mean / 100))
    assert line.test_set_term < 0.8 * independent


def test_with_predictions_from_some_seeds_the_term_is_measured_on_those(tmp_path):
    correct = synthetic_folder(tmp_path, with_predictions=(1, 2))
    line, hand = claim_line(tmp_path), by_hand(correct, (0, 1, 2), (1, 2))
    assert line.test_set_source == "predictions of 2 of 3 pairs (estimated from those)"
    assert (line.test_set_term, line.diff_low) == (pytest.approx(hand["term"]), pytest.approx(hand["low"]))


def test_two_models_that_agree_on_every_test_image_still_leave_a_doubt():
    same = [np.array([True, False, True, True])]
    assert measured(same, same) == pytest.approx(1e4 * 0.5 / 4 / 4)  # as if half an image were disagreed on
    assert measured([np.array([True, False])], [np.array([False, True])]) == pytest.approx(1e4 * 2 / 2)


def test_without_predictions_the_term_is_the_binomial_one(tmp_path):
    synthetic_folder(tmp_path, with_predictions=())
    line = claim_line(tmp_path)
    assert line.test_set_source == "binomial, as if independent (no predictions)" and math.isnan(line.test_set_term)
    per_seed = ResultsFolder(tmp_path).runs.pivot(index="seed", columns="ablation", values="top1")
    expected = stats.paired_difference(per_seed["learned"], per_seed["none"], test_images=(M, M))
    assert (line.diff_low, line.diff_high) == (pytest.approx(expected.low), pytest.approx(expected.high))


def test_a_seed_without_a_partner_in_the_other_cell_is_left_out_of_a_paired_claim_and_counted(tmp_path):
    for seed, top1 in ((0, 60.0), (1, 61.0), (2, 60.5), (3, 62.0)):
        append_row(tmp_path, row("learned", seed, top1))
    for seed, top1 in ((0, 55.0), (1, 56.5), (2, 55.2)):
        append_row(tmp_path, row("none", seed, top1))
    line = claim_line(tmp_path)
    assert (line.design, line.a_n, line.unpaired_left_out) == ("paired by seed", 3, 1)
    assert line.reason.endswith("; 1 seed without a partner in the other cell left out")


def test_holm_adjusts_a_family_as_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> made non-decreasing: 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = stats.holm([0.02, math.nan, 0.01, 0.9])  # untested questions are no members of the family
    assert math.isnan(adjusted[1]) and adjusted[::2] == pytest.approx([0.04, 0.03]) and adjusted[3] == 0.9
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # 2 x 0.5, then at least that, at most 1


@pytest.mark.parametrize("a, b, margin", [([5, 6, 7], [1, 2, 3], 0), ([5, 6, 7], [1, 2, 3], 3),
                                          ([1, 2, 3.5], [1.1, 2.1, 2.9], 0), ([60, 61, 60.5], [59, 60.2, 59.8], 1)])
def test_the_p_value_is_below_005_exactly_where_the_interval_excludes_the_margin(a, b, margin):
    record = stats.compare(a, b, "greater", margin, test_images=(10_000, 10_000))
    excluded = record["diff_low"] > margin or record["diff_high"] <= margin
    assert (record["p"] < 0.05) == excluded
    se = (record["diff_high"] - record["diff_low"]) / (2 * student_t.ppf(0.975, record["df"]))
    assert record["p"] == pytest.approx(2 * student_t.sf(abs(record["diff"] - margin) / se, record["df"]))


def test_a_verdict_under_holm_is_the_raw_one_only_where_the_adjusted_p_is_below_005():
    assert stats.holm_verdict("reproduced", 0.049) == "reproduced"
    assert stats.holm_verdict("contradicted", 0.051) == "inconclusive"
    assert stats.holm_verdict("inconclusive", 0.001) == "inconclusive"  # never decisive where the raw one is not


def test_the_claims_page_gives_the_verdicts_first_and_the_method_after_and_the_plot_words(tmp_path):
    synthetic_folder(tmp_path)
    folder = ResultsFolder(tmp_path)
    lines = markdown.claims_markdown(folder.claims, tmp_path, folder.runs).splitlines()
    holm = next(i for i, line in enumerate(lines) if line.startswith("Totals under Holm"))
    raw = next(i for i, line in enumerate(lines) if line.startswith("Totals with each claim judged alone at 95%"))
    method = lines.index("## How the verdicts are reached")
    first_table = next(i for i, line in enumerate(lines) if line.startswith("| claim"))
    assert holm < raw < first_table < method and sum(len(line.split()) for line in lines[:holm]) < 80
    figure = plots.claims_plot(folder.claims)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert "a learned table beats no encoding" in labels and not any("t1_" in label for label in labels)


def test_the_provenance_line_gives_the_commit_range_and_flags_changed_checkouts(tmp_path):
    first, second = "a" * 40, "b" * 40
    append_row(tmp_path, row("learned", 0, 60.0, git_commit=first, finished_at="2026-01-01T00:00:00+00:00"))
    append_row(tmp_path, row("learned", 1, 61.0, git_commit=second + "-dirty", code_diff="0123456789ab",
                             finished_at="2026-01-02T00:00:00+00:00"))
    append_row(tmp_path, row("learned", 2, 62.0, git_commit=second + "-dirty", finished_at="2026-01-03T00:00:00+00:00"))
    said = provenance(ResultsFolder(tmp_path).runs)
    assert "Code: 2 commits, from aaaaaaa (first run) to bbbbbbb (last run)." in said
    assert ("⚠ 2 runs made from a checkout with uncommitted changes: learned seed 1 (bbbbbbb-dirty, changes "
            "0123456789ab); learned seed 2 (bbbbbbb-dirty, changes not recorded).") in said
