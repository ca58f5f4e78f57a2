"""The paper's tables: pooling over seeds within one setting, the paper beside ours, claims, regeneration."""
from __future__ import annotations

import dataclasses
import filecmp
import functools
import io
import json
import subprocess
import tarfile

import pandas as pd
import pytest

from omegaconf import OmegaConf

from cpvt_lab import compose, paper, tables
from cpvt_lab.analysis.pages import markdown
from cpvt_lab.analysis.verdicts.claims import judge_claims
from cpvt_lab.analysis.frames import load_curves, load_runs, table_cells, count_test_images
from cpvt_lab.analysis.kinds import MEASURED
from cpvt_lab.analysis.settings import recipe_id
from cpvt_lab.config import ablation_names
from cpvt_lab.provenance import REPO_ROOT
from cpvt_lab.results import append_row
from conftest import made_row as row


@pytest.fixture()
def results(tmp_path):
    rows = [row("learned", 0, {24: 50.0, 32: 40.0}), row("learned", 1, {24: 52.0, 32: 42.0}),
            row("peg", 0, {24: 51.0, 32: 49.0}), row("peg", 1, {24: 53.0, 32: 47.0}),
            row("peg", 0, {24: 90.0, 32: 91.0}, scale="cifar", epochs=100),
            row("none", 0, {24: 10.0, 32: 10.0}, status="failed")]
    for r in rows:
        append_row(tmp_path, r)
    append_row(tmp_path, rows[0])  # a run recorded twice counts once
    return tmp_path


def test_runs_pool_over_seeds_only_within_one_setting(results):
    table = table_cells("table1_pe_strategies", load_runs(results))
    smoke = table[(table.scale == "smoke") & (table.size_px == 32)].set_index("ablation")
    assert smoke.loc["learned", "n"] == 2 and smoke.loc["learned", "mean"] == 41.0
    assert smoke.loc["peg", "std"] == pytest.approx(1.41, abs=0.01)
    cifar = table[table.scale == "cifar"]
    assert list(cifar.ablation.unique()) == ["peg"] and cifar["mean"].tolist() == [90.0, 91.0]
    assert "none" not in set(table.ablation)  # failed runs are not results


def test_the_paper_figure_sits_beside_ours_by_resolution_rank(results):
    table = table_cells("table1_pe_strategies", load_runs(results))
    learned = table[(table.scale == "smoke") & (table.ablation == "learned")].set_index("size_px")
    assert learned.loc[24, ["paper_px", "paper_value", "paper_status"]].tolist() == [224, 72.2, "confirmed"]
    assert learned.loc[32, ["paper_px", "paper_value", "paper_status"]].tolist() == [384, 71.2, "secondary"]


def test_claims_are_checked_per_setting_and_say_when_runs_are_missing(results):
    runs = load_runs(results)
    claims = judge_claims(runs, "table1_pe_strategies").set_index(["claim", "scale"])
    larger = claims.loc[("t1_peg_beats_learned_larger", "smoke")]
    assert (larger.a_mean, larger.b_mean, larger.a_n, larger.means_hold, larger.paper_holds) == (48.0, 41.0, 2, True,
                                                                                                 True)
    assert not claims.loc[("t1_peg_gains_larger", "smoke")].means_hold  # 48 at 32 px < 52 at 24 px
    assert pd.isna(claims.loc[("t1_learned_beats_none", "smoke")].means_hold)  # "none" has no finished run
    assert claims.loc[("t1_learned_beats_none", "smoke")].reason == "no runs"
    text = markdown.table_markdown("table1_pe_strategies", runs, judge_claims(runs), load_curves(results))
    assert "no runs" in text and markdown.SCALE_NOTES["smoke"] in text and markdown.SCALE_NOTES["cifar"] in text
    assert "Recipe: lr 0.001 per 100 images, augment off" in text and "lr ?" not in text  # from recorded configs


def cells(lines, first):
    """The cells of the Markdown table line that starts with ``first``."""
    line = next(line for line in lines if line.startswith(f"| {first} "))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_training_size_cell_gives_the_95_interval_of_the_mean_and_other_sizes_do_not(results):
    runs = load_runs(results)
    page = markdown.table_markdown("table1_pe_strategies", runs, judge_claims(runs), load_curves(results))
    cifar, smoke = (section.splitlines() for section in page.split("## scale=")[1:])
    assert cells(smoke, "ablation")[3] == "24 px (train)"
    learned = cells(smoke, "learned")  # seeds 50, 52 at 24 px: t(0.975, 1) = 12.706, sem 1
    assert learned[3] == "51.00 ± 1.41 [38.29, 63.71]" and learned[5] == "41.00 ± 1.41"
    assert cells(cifar, "peg")[3] == "90.00"  # one seed: no spread, no interval
    assert "claims.md gives intervals at every size" in page


def test_each_section_says_how_far_from_converged_its_runs_curves_end(tmp_path):
    epochs = range(1, 11)
    decay, loss = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05], [2.0] * 10
    for r in [row("learned", 0, {24: 100.0}, epochs=10,  # 10 points an epoch: +10 over the last tenth, +50 over half
                  curve={"epoch": list(epochs), "train_loss": loss, "top1": [10.0 * e for e in epochs], "lr": [*decay, 0.01]}),
              row("peg", 0, {24: 90.0}, epochs=10,  # 5 points an epoch: +5 and +25
                  curve={"epoch": list(epochs), "train_loss": loss, "top1": [40.0 + 5 * e for e in epochs], "lr": [*decay, 0.02]}),
              row("learned", 1, {24: 99.0}, epochs=10),  # recorded before curves existed
              row("peg", 0, {24: 90.0}, scale="cifar", epochs=100),
              row("peg", 0, {24: 20.0}, epochs=1, curve={"epoch": [1], "train_loss": [2.0], "top1": [20.0],
                                                          "lr": [0.1]})]:
        append_row(tmp_path, r)
    runs = load_runs(tmp_path)
    page = markdown.table_markdown("table1_pe_strategies", runs, judge_claims(runs), load_curves(tmp_path))
    cifar, one_epoch, smoke = page.split("## scale=")[1:]
    assert "How far from converged: no learning curves recorded for these runs." in cifar
    assert "How far from converged: the learning curves (1 of 1 runs) have one epoch, no gain." in one_epoch
    assert ("How far from converged (2 of 3 runs have learning curves; median over them): top-1 at the training size "
            "gained +7.50 (range +5.00 to +10.00) points over the last 10% of the epochs (epoch 9 to 10) and +37.50 "
            "(range +25.00 to +50.00) over the second half (epoch 5 to 10); the final lr was 0.015 (range 0.010 to "
            "0.020) of the peak. A cosine schedule flattens the end of any curve, so a small final gain alone does "
            "not prove convergence.") in smoke


def test_a_contradiction_is_said_plainly_as_a_finding_about_our_data_set(tmp_path):
    for seed, (learned, none) in enumerate([(50.0, 80.0), (52.0, 81.0), (51.0, 80.4)]):  # the paper: learned wins
        append_row(tmp_path, row("learned", seed, {24: learned}, test_images=10_000))
        append_row(tmp_path, row("none", seed, {24: none}, test_images=10_000))
    runs = load_runs(tmp_path)
    claims = judge_claims(runs)
    said = "contradicted: the opposite of the paper's ImageNet result holds on CIFAR-10, JPEG copy"
    page = markdown.table_markdown("table1_pe_strategies", runs, claims, load_curves(tmp_path)).splitlines()
    assert cells(page, "a learned table beats no encoding")[-1] == said
    assert cells(page, "a learned table beats the 2-D relative bias")[-1] == "inconclusive (no runs)"
    assert any("a contradicted claim is a finding about CIFAR-10, JPEG copy, not a failure" in line for line in page)
    listed = markdown.claims_markdown(claims, tmp_path, runs).splitlines()
    assert cells(listed, "a learned table beats no encoding")[-3:-1] == [said, said]  # verdict, under Holm, then why
    assert "Totals under Holm (the paper's claims on one set of runs as one family, family-wise error 5%): 0 " \
           "reproduced, 1 contradicted" in "\n".join(listed)
    decided = [line for line in listed if line.startswith("- **")]  # the lines the README quotes: decided ones only
    assert len(decided) == 1  # 51.00 - 80.47: the difference of the means, then its interval
    assert decided[0].startswith("- **contradicted:** a learned table beats no encoding (-29.47 [")


@functools.lru_cache(maxsize=None)
def recorded_config(ablation, *overrides):
    """A row's recorded config, as a run of ``ablation`` at smoke scale with ``overrides`` records it."""
    return json.dumps(OmegaConf.to_container(compose(ablation, ["scale=smoke", *overrides]), resolve=True))


def configured(ablation, seed, top1, *overrides, **extra):
    """A row with its recorded config (so its setting is known), run_id unique to its ablation, seed, overrides."""
    config = json.loads(recorded_config(ablation, f"seed={seed}", *overrides))
    return row(ablation, seed, top1, config=config, **extra)


LR_SWEEP = ("optim.lr=5e-4", "optim.lr=1e-3", "optim.lr=2e-3")


def test_an_lr_sweep_in_one_folder_is_three_settings_never_three_seeds(tmp_path):
    for i, lr in enumerate(LR_SWEEP):
        for seed in range(3):
            append_row(tmp_path, configured("learned", seed, {24: 40.0 + 10 * i + seed, 32: 35.0 + 10 * i}, lr))
            append_row(tmp_path, configured("none", seed, {24: 30.0 + 10 * i + seed, 32: 30.0}, lr))
    runs = load_runs(tmp_path)
    table = table_cells("table1_pe_strategies", runs)
    learned = table[(table.ablation == "learned") & (table.size_px == 24)]
    assert learned.n.tolist() == [3, 3, 3] and sorted(learned["mean"]) == [41.0, 51.0, 61.0]  # never one n=9 cell
    claims = judge_claims(runs).set_index("claim").loc["t1_learned_beats_none"]
    assert len(claims) == 3 and claims.a_n.tolist() == [3, 3, 3] and claims.recipe_id.nunique() == 3
    page = markdown.table_markdown("table1_pe_strategies", runs, judge_claims(runs), load_curves(tmp_path))
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert len(headings) == 3 and all(", recipe " in h for h in headings)  # one label, three recipes: each
    assert {h.split(" · ")[5].split(",")[0] for h in headings} == {  # heading says what tells it apart
        "lr 0.0005 per 100 images", "lr 0.001 per 100 images", "lr 0.002 per 100 images"}


def test_a_seed_recorded_twice_in_one_setting_counts_once_the_later_row(tmp_path):
    older = configured("learned", 0, {24: 10.0}, older_id=True)  # the same run under its other run_id
    append_row(tmp_path, older)
    for seed in range(3):
        append_row(tmp_path, configured("learned", seed, {24: 50.0 + seed}))
        append_row(tmp_path, configured("none", seed, {24: 40.0 + seed}))
    runs = load_runs(tmp_path)
    learned = table_cells("table1_pe_strategies", runs).set_index(["ablation", "size_px"]).loc[("learned", 24)]
    assert (learned.n, learned["mean"]) == (3, 51.0)  # seed 0 once, from the later row
    assert judge_claims(runs).set_index("claim").loc["t1_learned_beats_none", "a_n"] == 3
    tables.write_tables(tmp_path, tmp_path / "out")
    assert ("1 row left out, a seed recorded twice in one setting:** one seed is one sample, so the later row counts "
            f"(run_id {older['run_id']} (learned seed 0), counted as "
            f"{configured('learned', 0, {})['run_id']})") in (tmp_path / "out" / "README.md").read_text()


def test_an_ablation_run_with_its_own_keys_overridden_shows_apart_and_is_not_judged(tmp_path):
    for seed in range(3):
        append_row(tmp_path, configured("peg", seed, {24: 50.0, 32: 50.0}))
        append_row(tmp_path, configured("peg", seed, {24: 60.0, 32: 60.0}, "model.pos.kernel=5"))
        append_row(tmp_path, configured("learned", seed, {24: 40.0, 32: 40.0}))
    runs = load_runs(tmp_path)
    assert runs.recipe_id.nunique() == 1 and runs[runs.ablation == "peg"].setting_id.nunique() == 2
    page = markdown.table_markdown("table1_pe_strategies", runs, judge_claims(runs), load_curves(tmp_path))
    pegs = [line for line in page.splitlines() if line.startswith("| peg · setting ")]
    assert len(pegs) == 2 and {cells(pegs, p.split("|")[1].strip())[3][:5] for p in pegs} == {"50.00", "60.00"}
    claim = judge_claims(runs).set_index("claim").loc["t1_peg_beats_learned_larger"]
    assert claim.verdict == "inconclusive" and "peg hold several settings in this section" in claim.reason


def test_unstable_runs_are_left_out_of_cells_and_claims_and_counted(tmp_path):
    collapse = {"epoch": list(range(1, 13)), "train_loss": [1.82, 2.15, 2.13, 2.28, 2.2, 2.2, 2.1, 2.1, 2.1, 2.1, 2.1, 2.1],
                "top1": [30.1, 33.4, 35.2, 31.0, 29.6, 29.0, 28.7, 28.4, 28.2, 28.1, 28.0, 28.0], "lr": [1e-3] * 12}
    for seed in range(3):
        append_row(tmp_path, row("learned", seed, {24: 60.0 + seed}, test_images=10_000))
        append_row(tmp_path, row("none", seed, {24: 40.0 + seed}, test_images=10_000))
    append_row(tmp_path, row("learned", 3, {24: 28.0}, test_images=10_000, curve=collapse, unstable=False))
    append_row(tmp_path, row("none", 3, {24: 41.0}, test_images=10_000, unstable=True))  # a stale flag, no curve
    runs = load_runs(tmp_path)
    cell = table_cells("table1_pe_strategies", runs).set_index(["ablation", "size_px"])
    assert cell.loc[("learned", 24), ["n", "mean", "unstable"]].tolist() == [3, 61.0, 1]
    assert cell.loc[("none", 24), ["n", "unstable"]].tolist() == [4, 0]  # no curve: not judged, kept
    claim = judge_claims(runs).set_index("claim").loc["t1_learned_beats_none"]
    assert (claim.a_n, claim.left_out_unstable, claim.verdict) == (3, 1, "reproduced")
    # paired by seed: none's seed 3 loses its partner with learned's unstable seed 3
    assert claim.b_n == 3 and claim.reason.endswith("; 1 run left out as unstable; 1 seed without a partner in the "
                                                    "other cell left out")
    page = markdown.table_markdown("table1_pe_strategies", runs, judge_claims(runs), load_curves(tmp_path))
    assert cells(page.splitlines(), "learned")[3].endswith("⚠ 1 unstable run left out")
    assert "No curve: 7 runs recorded none, so not judged for stability." in page
    listed = markdown.claims_markdown(judge_claims(runs), tmp_path, runs).splitlines()
    assert cells(listed, "a learned table beats no encoding")[-5] == "1 run left out"


def test_every_ablation_file_sets_only_keys_that_the_recipe_id_leaves_out():
    ids = {recipe_id({"config": json.loads(recorded_config(a))}) for a in ablation_names()}
    assert len(ids) == 1, "an ablation sets a key beyond settings.ABLATION_KEYS: its runs would sit in no section"


@pytest.mark.parametrize("recorded, images", [
    ({"test_images": 60, "config": {"data": {"test_subset": 500}}}, 60),  # recorded by the run
    ({"config": {"data": {"_target_": "cpvt_lab.data.Cifar10JpegDataModule", "test_subset": 500,
                          "num_classes": 10}}}, 500),
    ({"config": {"data": {"_target_": "cpvt_lab.data.Cifar10DataModule", "test_subset": 505,
                          "num_classes": 10}}}, 500),  # stratified: 50 a class
    ({"config": {"data": {"_target_": "cpvt_lab.data.Cifar10JpegDataModule", "test_subset": None,
                          "num_classes": 10}}}, 10_000),  # the whole CIFAR-10 test set
    ({"config": {"data": {"_target_": "cpvt_lab.data.ImageFolderDataModule", "test_subset": None}}}, None),
    ({}, None),
])
def test_the_test_images_of_a_row_are_recorded_or_derived_from_its_config(recorded, images):
    assert count_test_images(recorded) == images


def test_measured_analyses_pool_seeds_within_one_setting(tmp_path):
    frames = []
    for i, lr in enumerate(LR_SWEEP[:2]):
        for seed in range(2):
            r = configured("peg", seed, {24: 50.0}, lr)
            append_row(tmp_path, r)
            frames.append(pd.DataFrame([{**{k: r[k] for k in ("run_id", "ablation", "seed", "scale", "dataset",
                                                                "epochs", "train_size", "model_size")},
                                          "size": 24, "block": 0, "target": t, "accuracy": 10.0 * (i + 1),
                                          "chance": 1.0} for t in ("position", "row", "col")]))
    page = markdown.measured_markdown(MEASURED["probe"], pd.concat(frames, ignore_index=True), tmp_path)
    assert page.count("\n## ") == 2  # one section per lr
    peg = [cells([line], "peg")[1:] for line in page.splitlines() if line.startswith("| peg ")]
    assert peg == [["10.0 ± 0.0", "2"]] * 3 + [["20.0 ± 0.0", "2"]] * 3  # position, row, col; n distinct seeds


def test_claim_records_name_cells_of_their_tables_and_the_paper_agrees_with_its_own_claims():
    ref = paper.reference()
    for claim in paper.CLAIMS:
        table = paper.TABLE_BY_ID[claim.table]
        assert {claim.a.ablation, claim.b.ablation} <= set(table.ablations), claim.id
        a, b = (paper.paper_value(table, c.ablation, c.rank, ref)[0] for c in (claim.a, claim.b))
        assert None in (a, b) or claim.holds(a, b), claim.id
    with_figures = [c for c in paper.CLAIMS if c.id != "t3_gap_helps_peg"]  # the paper gives GAP figures for 0-5
    assert all(paper.paper_value(paper.TABLE_BY_ID[c.table], c.a.ablation, c.a.rank, ref)[0] is not None
               for c in with_figures)


# (results folder, tables folder made from it): the committed pairs, each regenerated by the tables command
COMMITTED = [("results/smoke", "paper_tables/smoke"), ("results/cifar", "paper_tables/cifar"),
             ("results/cpu", "paper_tables/cpu"), ("results/cpu16", "paper_tables/cpu16")]


def committed_copy(target):
    """results/ and paper_tables/ as committed (rows that local runs appended since do not count)."""
    archive = subprocess.run(["git", "archive", "HEAD", "results", "paper_tables"], cwd=REPO_ROOT, capture_output=True)
    if archive.returncode != 0:  # not a git checkout: the files as they are
        return REPO_ROOT
    tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(target, filter="data")
    return target


@pytest.mark.parametrize("results_dir, tables_dir", COMMITTED)
def test_the_committed_tables_are_what_the_committed_results_give(results_dir, tables_dir, tmp_path, monkeypatch):
    root = committed_copy(tmp_path / "committed")
    if not (root / results_dir / "runs.jsonl").is_file():  # a study not begun has no tables either
        assert not (root / tables_dir).exists(), f"{tables_dir} is committed without {results_dir}/runs.jsonl"
        return
    monkeypatch.chdir(root)  # the tables name the folder as the command was given it, relative to the checkout
    assert tables.main([f"results_dir={results_dir}", f"tables_dir={tmp_path / 'regenerated'}"]) == 0
    names = sorted(p.name for p in (tmp_path / "regenerated").iterdir())
    assert names == sorted(p.name for p in (root / tables_dir).iterdir())
    _, mismatch, errors = filecmp.cmpfiles(root / tables_dir, tmp_path / "regenerated", names, shallow=False)
    assert mismatch == [] and errors == [], (f"regenerate with: python -m cpvt_lab.tables results_dir={results_dir} "
                                             f"tables_dir={tables_dir} ({mismatch + errors})")


def test_the_tables_name_the_folder_they_were_read_from(results, tmp_path):
    tables.write_tables(results, tmp_path / "out")
    for name in ("README.md", "claims.md", "equivariance.md", "probe.md"):
        assert f"`{results.as_posix()}/" in (tmp_path / "out" / name).read_text(), name


def test_cli_rejects_a_missing_results_folder(tmp_path, capsys):
    assert tables.main([f"results_dir={tmp_path / 'nope'}", f"tables_dir={tmp_path / 'out'}"]) == 2
    assert "results_dir: " in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert tables.main([f"results={tmp_path / 'nope'}", f"out={tmp_path / 'out'}"]) == 2  # the old names still read
    assert "results_dir: " in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert tables.main(["--results", str(tmp_path)]) == 2  # the old flags are refused, not misread
    assert tables.main([f"results_dir={tmp_path}", "colour=red"]) == 2
    assert "colour: unknown key" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_cli_help_names_the_keys(capsys):
    assert tables.main(["--help"]) == 0
    assert "results_dir=DIR" in capsys.readouterr().out


def test_the_reference_copy_has_status_and_source_for_every_figure():
    ref = paper.reference()
    assert {"status", "source"} <= set(ref.columns) and ref.status.notna().all() and ref.source.notna().all()
    assert set(ref.status) <= {"confirmed", "secondary", "recalled"}


def test_each_paper_table_is_read_from_its_grid_file_with_the_paper_row_of_each_ablation(tmp_path):
    from cpvt_lab.ablations import SpecError, load_grid, names
    for table in paper.TABLES:
        [grid] = load_grid(table.grid)
        assert list(grid.ablations) == table.ablations, table.id
    in_paper = [g.name for g in load_grid("paper")]  # the paper's, as paper.yaml includes them; then ours by name
    ours = sorted(n for n in names("grid") if n not in in_paper and any(g.table for g in load_grid(n) if g.name == n))
    assert [t.grid for t in paper.TABLES] == in_paper + ours and "beyond_rope" in ours
    t3 = paper.TABLE_BY_ID["table3_cls_vs_gap"]
    assert t3.paper_row("peg") == paper.PaperRow("table1_pe_strategies", "CPVT-Ti", "peg@0")
    assert t3.paper_row("peg_gap") is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("table: x\ntitle: t\nshows: s\nablations:\n  peg: [table1_pe_strategies, CPVT-Ti]\n")
    with pytest.raises(SpecError, match="ablations.peg: a paper row is .study, model, variant."):
        load_grid(str(bad))
    assert [paper.table_of(g) for g in load_grid("beyond")] == [None]  # a grid that is no table


def test_the_rope_study_shares_the_paper_grids_runs_and_draws_rows_the_paper_has_no_figure_for(tmp_path):
    from cpvt_lab.ablations import load_grid
    from cpvt_lab.study.plan import plan_grid as plan
    rope = paper.TABLE_BY_ID["beyond_rope"]
    assert "beyond_rope" not in {g.name for g in load_grid("paper")}  # the paper's grid and tables stay as they are
    paper_runs = {r.run_id for r in plan("paper", ["scale=smoke"], seeds=[0])}
    shared = {r.ablation for r in plan("beyond_rope", ["scale=smoke"], seeds=[0]) if r.run_id in paper_runs}
    assert shared == {"learned", "sincos", "peg", "peg_gap"}  # the baselines are the paper grid's runs, trained once
    for seed in (0, 1):
        for ablation in ("learned", "rope_axial", "rope_mixed_gap"):
            append_row(tmp_path, row(ablation, seed, {24: 50.0 + seed, 32: 45.0 + seed, 40: 40.0 + seed, 48: 35.0 - seed}))
    runs = load_runs(tmp_path)
    page = markdown.table_markdown("beyond_rope", runs, judge_claims(runs), load_curves(tmp_path)).splitlines()
    assert cells(page, "ablation")[3:] == ["24 px (train)", "paper 224 px", "32 px", "paper 384 px", "40 px",
                                           "paper 448 px", "48 px", "paper 512 px"]
    assert cells(page, "learned")[4] == "72.2 (secondary)"
    axial = cells(page, "rope_axial")  # no published figure: a dash in every paper column, ours beside it
    assert axial[1] == "—" and axial[3] == "50.50 ± 0.71 [44.15, 56.85]" and axial[4::2] == ["—"] * 4
    assert cells(page, "peg_rope")[3] == "no runs" and "Claims of the paper" not in "\n".join(page)
    table = table_cells("beyond_rope", runs)
    mine = table[table.ablation == "rope_axial"]
    assert mine.paper_value.isna().all() and mine.low.notna().all()  # the interval of every cell is in the CSV
    assert len(table) == 12 and list(rope.ablations[:3]) == ["learned", "sincos", "peg"]


def test_a_table_says_in_one_sentence_which_row_keeps_the_most_of_its_top1_at_the_largest_size(tmp_path):
    for seed in (0, 1, 2):
        append_row(tmp_path, row("learned", seed, {24: 50.0 + seed, 32: 49.0, 40: 47.0, 48: 45.0 + seed}))
        append_row(tmp_path, row("peg", seed, {24: 52.0, 32: 50.0, 40: 45.0, 48: 40.0}))
        append_row(tmp_path, row("sincos", seed, {24: 48.0, 32: 47.0}))  # no run at 48 px: not compared
    runs = load_runs(tmp_path)
    page = markdown.table_markdown("beyond_rope", runs, judge_claims(runs), load_curves(tmp_path))
    assert ("from the training size (24 px) to the largest test size (48 px) without fine-tuning, of the 2 rows with "
            "runs at both `learned` keeps the most of its top-1 (-5.00 points) and `peg` the least (-12.00); means "
            "over 3 seeds, and `beyond_rope.csv` gives every cell's 95% interval.") in page  # no claim judges its rows
    table2 = markdown.table_markdown("table2_resolution", runs, judge_claims(runs), load_curves(tmp_path))
    assert "means over 3 seeds, and claims.md says which gaps the intervals decide." in table2  # claims judge these
    one = load_runs(tmp_path)
    one = one[one.ablation == "peg"]  # one row with runs at both sizes: nothing to compare
    assert "What the data shows" not in markdown.table_markdown("beyond_rope", one, judge_claims(one),
                                                                load_curves(tmp_path))


def stored(r, kind, lines):
    """Measurements of one run as the study stores them (``analysis.measures.store``), at the run's training size."""
    from cpvt_lab.analysis.measures import store
    meta = {k: r[k] for k in store.RUN_FIELDS if k in r}
    store.save(r["results_dir"], kind, pd.DataFrame([{**meta, "size": 24, "images": 250, **x} for x in lines]))


def test_the_rope_table_gives_the_equivariance_and_probe_headlines_with_their_intervals(tmp_path):
    from cpvt_lab.analysis.pages import report
    from cpvt_lab.analysis.verdicts import stats
    for seed, (share, error, probe) in enumerate([(40.0, 0.10, 2.0), (42.0, 0.12, 10.0), (44.0, 0.14, 30.0)]):
        r = row("rope_axial", seed, {24: 50.0 + seed, 48: 40.0})
        append_row(tmp_path, r)
        r["results_dir"] = tmp_path
        stored(r, "equivariance", [
            {"fill": "zeros", "shift": 4, "whole_patch": True, "measure": "consistency", "block": -1, "value": share},
            {"fill": "zeros", "shift": 8, "whole_patch": True, "measure": "consistency", "block": -1, "value": 1.0},
            {"fill": "zeros", "shift": 2, "whole_patch": False, "measure": "consistency", "block": -1, "value": 2.0},
            {"fill": "zeros", "shift": 4, "whole_patch": True, "measure": "equivariance_error", "block": 0,
             "value": 0.9},
            {"fill": "zeros", "shift": 4, "whole_patch": True, "measure": "equivariance_error", "block": 11,
             "value": error}])
        stored(r, "probe", [{"block": b, "target": t, "accuracy": probe if b == 11 and t == "position" else 99.0,
                             "chance": 100 / 36} for b in (0, 11) for t in ("position", "row")])
    report.write_paper_tables(tmp_path, tmp_path / "tables")
    page = (tmp_path / "tables" / "beyond_rope.md").read_text().splitlines()
    header = cells(page[page.index(next(x for x in page if x.startswith("Measured on the same runs"))):], "ablation")
    assert header == ["ablation", "consistency, one-patch shift (%)",
                      "equivariance error x100, last block, one-patch shift", "position probe, last block (%; chance 2.8)",
                      "n"]
    share = stats.cell_summary([40.0, 42.0, 44.0], 250)  # the 250 images each seed was scored on widen it
    probe = stats.cell_summary([2.0, 10.0, 30.0], 125)  # the probe's test half
    axial = [cells([line], "rope_axial") for line in page if line.startswith("| rope_axial ")][-1]
    assert axial == ["rope_axial", f"42.00 ± 2.00 [{share.low:.2f}, {share.high:.2f}]",
                     "12.00 ± 2.00 [7.03, 16.97]",  # no images: the seeds' Student interval alone
                     f"14.00 ± 14.42 [0.00, {probe.high:.2f}]", "3"]  # stops at 0, what a share can be
    assert share.low < 42 - 4.96 and probe.low < 0  # wider than the seeds' interval [37.03, 46.97] alone
    assert [cells([x], "peg") for x in page if x.startswith("| peg ")][-1][1:] == ["no measurements"] * 3 + ["0"]
    measured = pd.read_csv(tmp_path / "tables" / "beyond_rope_measured.csv")
    assert set(measured.n) == {3} and measured.low.notna().all()
    paper_page = (tmp_path / "tables" / "table1_pe_strategies.md").read_text()
    assert "Measured on the same runs" not in paper_page  # the paper's tables stay as they are
    assert not (tmp_path / "tables" / "table1_pe_strategies_measured.csv").exists()


def test_a_table_names_only_measured_analyses_that_have_headlines(tmp_path, monkeypatch):
    from cpvt_lab.analysis.pages import report
    assert paper.TABLE_BY_ID["beyond_rope"].measured == ("equivariance", "probe")
    assert all(MEASURED[k].headline for t in paper.TABLES for k in t.measured)
    wrong = dataclasses.replace(paper.TABLE_BY_ID["beyond_rope"], measured=("attention_maps", "nonsense"))
    monkeypatch.setattr(report, "TABLES", (wrong,))
    with pytest.raises(ValueError, match=r"grid beyond_rope: measured: attention_maps, nonsense: not a measured "
                                         r"analysis with a headline; valid: equivariance, probe"):
        report.write_paper_tables(tmp_path, tmp_path / "tables")


def test_a_tables_own_questions_are_judged_as_claims_are_and_kept_apart_from_the_papers(tmp_path):
    from cpvt_lab.analysis.pages import claims_page, report
    from cpvt_lab.analysis.folder import ResultsFolder
    for seed in range(3):
        append_row(tmp_path, row("peg_rope", seed, {24: 56.0 + seed, 32: 50.0, 40: 40.0, 48: 30.0 + 10 * seed}))
        append_row(tmp_path, row("rope_axial", seed, {24: 50.0 + (0, 2, 1)[seed], 32: 50.0, 40: 40.0, 48: 35.0}))
    for seed in range(2):
        append_row(tmp_path, row("rope_mixed", seed, {24: 60.0, 32: 50.0, 40: 40.0, 48: 60.0 + seed}))
    report.write_paper_tables(tmp_path, tmp_path / "tables")
    claims_page.write(ResultsFolder(tmp_path), tmp_path / "tables")
    page = (tmp_path / "tables" / "beyond_rope.md").read_text().splitlines()
    line = cells(page, "does the PEG add to axial RoPE at the training size (peg_rope@0 vs rope_axial@0)")
    # paired by seed by hand: per-seed differences 6, 5, 7 (SD 1), df 2, t(0.975, 2) = 4.303; p = 0.0091, and
    # three questions have an interval (the family): 3 x 0.0091 under Holm
    assert line[3:5] == ["+6.00 [+3.52, +8.48]", "paired by seed"]
    assert line[5:] == ["0.009 (0.027)", "A higher", "A higher"]
    assert cells(page, "does the PEG add to axial RoPE at the largest test size (peg_rope@3 vs rope_axial@3)")[3] \
        == "+5.00 [-19.84, +29.84]"  # differences -5, 5, 15: t 4.303 x 10 / sqrt(3)
    assert cells(page, "does GAP help axial RoPE (rope_axial_gap@0 vs rope_axial@0)")[-1] == "not decided (no runs)"
    mixed = cells(page, "does RoPE-Mixed keep more than axial RoPE at the largest test size (Heo et al. on ImageNet) "
                        "(rope_mixed@3 vs rope_axial@3)")
    assert mixed[-1] == "not decided (n < 3)"  # 25.5 points apart, but two seeds
    questions = pd.read_csv(tmp_path / "tables" / "beyond_rope_questions.csv")
    assert len(questions) == len(paper.TABLE_BY_ID["beyond_rope"].compare) == 6
    assert "verdict" not in questions and questions.answer.iloc[0] == "A higher"  # no paper's figure to reproduce
    assert sorted(p.name for p in (tmp_path / "tables").glob("*_questions.csv")) == ["beyond_rope_questions.csv"]
    claims_page = (tmp_path / "tables" / "claims.md").read_text()
    assert "axial RoPE" not in claims_page and "Questions of this table" not in claims_page  # the paper's alone
    assert "Questions of this table" not in (tmp_path / "tables" / "table2_resolution.md").read_text()


@pytest.mark.parametrize("entry, says", [
    ("[PEG beats RoPE, peg@0]", r"each question is \[text, a@k, b@k\]"),
    ("[PEG beats RoPE, peg@0, sincos@0]", r"'sincos@0' is not ablation@k with an ablation of this grid \(peg, "
                                          r"rope_axial\) and k a test size's rank, 0 to 1"),
    ("[PEG beats RoPE, peg@2, rope_axial@0]", r"'peg@2' is not ablation@k"),
    ("[PEG beats RoPE, peg, rope_axial@0]", r"'peg' is not ablation@k")])
def test_a_tables_question_that_names_no_cell_of_its_grid_is_refused_in_one_line(tmp_path, entry, says):
    from cpvt_lab.ablations import SpecError, load_grid
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"table: x\ntitle: t\nshows: s\nablations: [peg, rope_axial]\neval_sizes: [24, 48]\n"
                   f"compare:\n  - {entry}\n")
    with pytest.raises(SpecError, match=f"grid 'bad': compare: {says}"):
        load_grid(str(bad))
