"""``python -m cpvt_lab.study`` with no study: every study of ablations/studies/, one line each, where it stands."""
from __future__ import annotations

from cpvt_lab.study import command


def test_with_no_study_every_study_is_listed_with_where_it_stands(monkeypatch, capsys):
    listed = []
    monkeypatch.setattr(command, "study_names", lambda kind: listed.append(kind) or ["smoke", "cpu"])
    monkeypatch.setattr(command, "plan_study", lambda study, extra: [])  # what a plan holds is test_study's
    assert command.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert listed == ["study"] and out[0] == "studies (ablations/studies/):"
    assert out[1].split()[:5] == ["smoke", "0", "of", "0", "runs"] and "outputs/study_smoke/results/" in out[1]
    assert out[2].split()[0] == "cpu" and "results/cpu/, tables in paper_tables/cpu/ (complete; scale=cpu)" in out[2]
    assert "python -m cpvt_lab.study study=NAME" in out[-1]


def test_words_meant_for_one_study_without_naming_it_are_refused(capsys):
    assert command.main(["results_dir=x"]) == 2
    assert capsys.readouterr().err.startswith("error: study: name the study")
