"""The page of which verdicts of a short study hold when its ablations train longer (``longer_training``)."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml

from cpvt_lab import analyze, tables
from cpvt_lab.ablations import SpecError, Study, find, load_study
from cpvt_lab.analysis.folder import ResultsFolder
from cpvt_lab.analysis.pages.longer_training import OUTCOMES, compare, outcome
from cpvt_lab.results import Rows, append_row
from cpvt_lab.study.advance import write_tables
from conftest import made_row

CLAIM = "t1_learned_beats_none"
TOP1 = {  # seeds 0-2 of learned and none, shorter (4 epochs) and at each longer outcome (16 epochs)
    "shorter": ((62.0, 62.4, 61.8), (55.1, 55.6, 54.9)),
    "holds": ((70.2, 70.6, 70.0), (64.1, 64.5, 63.8)),
    "reversed": ((60.1, 60.9, 59.7), (66.0, 66.2, 65.9)),
    "not decided": ((65.0, 67.5, 63.1), (65.3, 63.9, 66.2)),
}


def folder_of(path, top1, epochs):
    for ablation, values in zip(("learned", "none"), top1):
        for seed, value in enumerate(values):
            append_row(path, made_row(ablation, seed, {24: value}, scale="cpu", epochs=epochs))
    return path


def claim_lines(tmp_path, longer):
    shorter = ResultsFolder(folder_of(tmp_path / "short", TOP1["shorter"], 4)).claims
    return compare(shorter, ResultsFolder(folder_of(tmp_path / "long", TOP1[longer], 16)).claims)


@pytest.mark.parametrize("longer, expected", [("holds", "holds under Holm"), ("reversed", "reversed"),
                                              ("not decided", "not decided")])
def test_a_verdict_decided_at_the_shorter_training_is_marked_by_what_the_longer_runs_say(tmp_path, longer, expected):
    lines = claim_lines(tmp_path, longer)
    assert list(lines.claim) == [CLAIM]  # the one claim decided at 4 epochs, and only it
    line = lines.iloc[0]
    assert (line.shorter_verdict, line.shorter_epochs, line.longer_epochs) == ("reproduced", 4, 16)
    assert line.outcome == expected


def test_a_claim_whose_ablations_did_not_train_longer_has_no_runs(tmp_path):
    shorter = ResultsFolder(folder_of(tmp_path / "short", TOP1["shorter"], 4)).claims
    append_row(tmp_path / "long", made_row("peg", 0, {24: 60.0}, scale="cpu", epochs=16))
    assert list(compare(shorter, ResultsFolder(tmp_path / "long").claims).outcome) == ["no runs"]


def test_holding_at_95_alone_is_told_from_holding_under_holm():
    longer = pd.Series({"a_n": 3, "b_n": 3, "verdict": "reproduced", "verdict_holm": "inconclusive"})
    assert outcome("reproduced", longer) == "holds at 95% alone"
    assert outcome("contradicted", longer) == "reversed"


def test_folders_of_two_settings_are_refused(tmp_path):
    shorter = folder_of(tmp_path / "short", TOP1["shorter"], 4)
    folder_of(shorter, TOP1["holds"], 16)
    claims = ResultsFolder(shorter).claims
    with pytest.raises(ValueError, match="2 settings"):
        compare(claims, claims)


def test_the_command_writes_the_page_counting_every_outcome(tmp_path):
    shorter, longer = folder_of(tmp_path / "short", TOP1["shorter"], 4), folder_of(tmp_path / "long", TOP1["holds"], 16)
    out = tmp_path / "tables"
    assert analyze.main(["longer_training", f"results_dir={longer}", f"tables_dir={out}", f"shorter={shorter}"]) == 0
    page = (out / "longer_training.md").read_text()
    assert "1 hold under Holm, 0 hold at 95% alone, 0 not decided, 0 reversed, 0 no runs" in page
    assert "shorter (4 epochs)" in page and "longer (16 epochs)" in page
    assert list(pd.read_csv(out / "longer_training.csv").outcome) == ["holds under Holm"]
    assert set(OUTCOMES) >= set(pd.read_csv(out / "longer_training.csv").outcome)


def test_a_shorter_folder_without_rows_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    longer, out = folder_of(tmp_path / "long", TOP1["holds"], 16), tmp_path / "tables"
    assert analyze.main(["longer_training", f"results_dir={longer}", f"tables_dir={out}",
                         f"shorter={tmp_path / 'nowhere'}"]) == 2
    error = capsys.readouterr().err.strip()
    assert "shorter:" in error and "runs.jsonl" in error and len(error.splitlines()) == 1
    assert not (out / "longer_training.md").exists()


def test_a_longer_study_writes_the_page_beside_its_tables(tmp_path, capsys):
    shorter = folder_of(tmp_path / "short", TOP1["shorter"], 4)
    short_study = tmp_path / "short_study.yaml"
    short_study.write_text(yaml.safe_dump({"grids": ["table1"], "seeds": [0, 1, 2], "overrides": [],
                                           "runtime": [], "results_dir": str(shorter),
                                           "tables_dir": str(tmp_path / "short_tables"), "analysis_images": 0}))
    longer = folder_of(tmp_path / "long", TOP1["reversed"], 16)
    study = Study("long", ("table1",), (0, 1, 2), (), (), str(longer), str(tmp_path / "tables"), 0,
                  longer_than=str(short_study))
    written = write_tables(study, Rows(longer))
    assert tmp_path / "tables/longer_training.md" in written
    assert "0 hold under Holm, 0 hold at 95% alone, 0 not decided, 1 reversed" in (
        tmp_path / "tables/longer_training.md").read_text()
    assert "[longer_training.md](longer_training.md)" in (tmp_path / "tables/README.md").read_text()


def test_the_tables_command_writes_the_page_for_the_folder_of_a_study_that_trains_longer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the study files name their folders from the checkout: results/cpu, results/cpu16
    folder_of(tmp_path / load_study("cpu").results_dir, TOP1["shorter"], 4)
    longer = folder_of(tmp_path / load_study("cpu16").results_dir, TOP1["holds"], 16)
    assert tables.main([f"results_dir={longer}", "tables_dir=longer_tables"]) == 0
    assert "1 hold under Holm" in (tmp_path / "longer_tables/longer_training.md").read_text()
    assert tables.main([f"results_dir={tmp_path / 'results/cpu'}", "tables_dir=shorter_tables"]) == 0
    assert not (tmp_path / "shorter_tables/longer_training.md").exists()  # cpu trains nothing longer


def test_the_16_epoch_study_checks_the_cpu_study_and_an_unknown_one_is_refused(tmp_path):
    assert load_study("cpu16").longer_than == "cpu" and load_study("cpu").longer_than is None
    spec = yaml.safe_load(find("study", "cpu16").read_text())
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**spec, "longer_than": "no_such_study"}))
    with pytest.raises(SpecError, match="unknown study 'no_such_study'"):
        load_study(str(path))
