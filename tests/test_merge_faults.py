"""The fault battery of rows that come from elsewhere: every way an archive, a row or a pack target can be wrong
is tried as a careless or unlucky user would, and each gets one line, exit status 2 and a results folder left
byte for byte as it was (or merged whole). Rows are made from planned configs, not trained: seconds in all."""
from __future__ import annotations

import functools
import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from cpvt_lab.ablations import load_study
from cpvt_lab.analysis.frames import load_runs, pool_seeds
from cpvt_lab.results import Rows
from cpvt_lab.row_data import PROJECT_ARCHIVE_SHA256
from cpvt_lab.study.command import main as study_main
from cpvt_lab.study.exchange import ExchangeError, merge, pack
from cpvt_lab.study.plan import plan_study
from cpvt_lab.tables import main as tables_main

OTHER_SHA256 = "ab" * 32


@functools.lru_cache(maxsize=None)
def _planned(folder: str):
    """The attention grid (learned, none, peg) at seeds 0-2, planned once; rows are made from its configs."""
    path = Path(folder) / "study.yaml"
    path.write_text(yaml.safe_dump({"grids": ["attention"], "seeds": [0, 1, 2], "overrides": ["scale=smoke"],
                                    "runtime": [], "results_dir": str(Path(folder) / "home"),
                                    "tables_dir": str(Path(folder) / "tables"), "analysis_images": 20}))
    study = load_study(str(path))
    return path, {(r.ablation, r.seed): r for r in plan_study(study)}


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    return _planned(str(tmp_path_factory.mktemp("planned")))


def make_row(planned, ablation="none", seed=0, top1=20.0, finished_at="2026-12-01T00:00:00+00:00", **extra):
    run = planned[1][(ablation, seed)]
    return {"run_id": run.run_id, "ablation": ablation, "seed": seed, "status": "ok", "scale": "smoke",
            "dataset": "CIFAR-10, JPEG copy", "epochs": 2, "train_size": 24, "model_size": "smoke",
            "top1": {"24": top1, "32": top1 - 1}, "test_images": 500, "compiled": False, "compile_check": None,
            "finished_at": finished_at, "config": OmegaConf.to_container(run.cfg, resolve=True), **extra}


def write_rows(folder: Path, rows, raw: bytes = b"") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = b"".join((json.dumps(r, sort_keys=True) + "\n").encode() for r in rows)
    (folder / "runs.jsonl").write_bytes(text + raw)
    return folder


def archive_of(tmp_path: Path, rows, raw: bytes = b"", name="slot.tar.gz") -> Path:
    return pack(write_rows(tmp_path / f"{name}.folder", rows, raw), tmp_path / name)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def home(planned, tmp_path):
    """A results folder holding one finished run (learned seed 0) and a measurement."""
    folder = write_rows(tmp_path / "home", [make_row(planned, "learned", 0, top1=50.0)])
    (folder / "analysis/probe").mkdir(parents=True)
    (folder / "analysis/probe/x.csv").write_text("home\n")
    return folder


def refused(source, home: Path) -> str:
    """Merge ``source`` into ``home`` expecting a refusal that leaves ``home`` as it was; the message."""
    before = snapshot(home)
    with pytest.raises(ExchangeError) as err:
        merge(source, home)
    assert snapshot(home) == before
    message = str(err.value)
    assert "\n" not in message
    return message


# --- identity ------------------------------------------------------------------------------------------------


def test_a_row_claiming_another_runs_identity_is_refused_and_named(planned, tmp_path, home):
    forged = make_row(planned, "none", 1)
    forged["run_id"] = planned[1][("learned", 1)].run_id  # learned seed 1's id on none's config and numbers
    message = refused(archive_of(tmp_path, [make_row(planned, "none", 0), forged]), home)
    assert "line 2: run_id " + forged["run_id"] in message and "another run's identity" in message
    assert "nothing merged" in message


def test_a_row_claiming_another_runs_identity_in_a_folder_is_left_out_of_status_and_tables(planned, tmp_path, capsys):
    path, _ = planned
    forged = make_row(planned, "none", 0, top1=11.0)
    forged["run_id"] = planned[1][("learned", 0)].run_id
    write_rows(tmp_path / "home", [forged])
    rows = Rows(tmp_path / "home")
    assert rows.all == [] and rows.finished() == [] and "line 1: run_id" in str(rows.bad[0])
    assert study_main(["status", f"study={path}", f"results_dir={tmp_path / 'home'}"]) == 0
    captured = capsys.readouterr()
    assert "0 of 9 runs in" in captured.out and "learned seed 0" in captured.out
    assert "runs.jsonl line 1: run_id" in captured.err
    assert tables_main([f"results_dir={tmp_path / 'home'}", f"tables_dir={tmp_path / 'tables'}"]) == 0
    assert "11.0" not in "".join(p.read_text() for p in (tmp_path / "tables").glob("*.csv"))


def test_every_committed_row_carries_its_configs_run_id():
    for folder in ("results/cpu", "results/smoke", "results/cpu_sweep"):
        rows = Rows(Path(__file__).parents[1] / folder)
        assert rows.bad == [] and rows.all, folder


# --- data ----------------------------------------------------------------------------------------------------


def _data(sha256, split="train: 1000; test: 500"):
    return {"sha256": sha256, "hashed": "archive", "classes": ["a"] * 10, "split": split}


def test_runs_trained_on_different_data_never_share_a_cell(planned, tmp_path):
    rows = [make_row(planned, "none", 0, top1=30.0), make_row(planned, "none", 1, top1=31.0),
            make_row(planned, "none", 2, top1=10.0, data_identity=_data(OTHER_SHA256))]
    cells = pool_seeds(load_runs(Rows(tmp_path, rows)))
    at_24 = cells[cells.size_px == 24].set_index("dataset")
    assert len(at_24) == 2 and at_24.loc["CIFAR-10, JPEG copy", "n"] == 2
    other = f"CIFAR-10, JPEG copy, data {OTHER_SHA256[:12]} (train: 1000; test: 500)"
    assert at_24.loc[other, "n"] == 1 and at_24.loc[other, "mean"] == 10.0


def test_a_row_recording_the_project_archive_pools_with_the_rows_from_before_data_was_recorded(planned, tmp_path):
    rows = [make_row(planned, "none", 0), make_row(planned, "none", 1, data_identity=_data(PROJECT_ARCHIVE_SHA256))]
    cells = pool_seeds(load_runs(Rows(tmp_path, rows)))
    assert list(cells[cells.size_px == 24].n) == [2]


def test_the_same_data_in_another_split_is_another_cell(planned, tmp_path):
    rows = [make_row(planned, "none", 0, data_identity=_data(OTHER_SHA256, "train: 1000; test: 500")),
            make_row(planned, "none", 1, data_identity=_data(OTHER_SHA256, "train: 900; test: 500"))]
    cells = pool_seeds(load_runs(Rows(tmp_path, rows)))
    assert list(cells[cells.size_px == 24].n) == [1, 1]


def test_a_row_with_a_malformed_data_identity_is_refused(planned, tmp_path, home):
    message = refused(archive_of(tmp_path, [make_row(planned, "none", 0, data_identity={"sha256": 5})]), home)
    assert "line 1: data_identity must hold a sha256 and a split" in message


# --- merge is a transaction ------------------------------------------------------------------------------------


def test_an_ok_row_without_top1_is_refused_and_the_folder_stays_readable(planned, tmp_path, home):
    row = make_row(planned, "none", 0)
    del row["top1"]
    assert "line 1: an ok row without top1" in refused(archive_of(tmp_path, [row]), home)
    write_rows(tmp_path / "broken", [make_row(planned, "none", 1), row])  # one written by hand into a folder
    assert tables_main([f"results_dir={tmp_path / 'broken'}", f"tables_dir={tmp_path / 't'}"]) == 0
    assert Rows(tmp_path / "broken").bad[0].line == 2


def test_a_row_without_run_id_refuses_the_whole_merge(planned, tmp_path, home):
    row = make_row(planned, "none", 1)
    del row["run_id"]
    message = refused(archive_of(tmp_path, [make_row(planned, "none", 0), row]), home)
    assert "line 2: no run_id" in message and "1 of 2 lines" in message


@pytest.mark.parametrize("raw, said", [
    (b'{"run_id": "abc", "status": "o', "line 2: not a JSON row"),  # torn last line
    (b"garbage\n\x00\x01\n", "line 2: not a JSON row"),
    (b"\xff\xfe binary\n", "line 2: not UTF-8 text"),
    (b"[1, 2]\n", "line 2: not a JSON object but list"),
])
def test_lines_that_are_no_row_are_named_and_nothing_is_merged(planned, tmp_path, home, raw, said):
    assert said in refused(archive_of(tmp_path, [make_row(planned, "none", 0)], raw), home)


def test_an_archive_of_garbage_lines_only_is_refused(tmp_path, home):
    message = refused(archive_of(tmp_path, [], b"garbage\nmore garbage\n"), home)
    assert "2 of 2 lines" in message and "line 1:" in message and "line 2:" in message


def test_a_row_that_would_replace_a_finished_one_is_refused_with_the_difference_and_the_rest_merged(planned, tmp_path,
                                                                                                   home):
    other = make_row(planned, "learned", 0, top1=55.0, finished_at="2026-12-02T00:00:00+00:00")
    merged = merge(archive_of(tmp_path, [other, make_row(planned, "peg", 0)]), home)
    assert merged.rows == 1 and len(merged.refused) == 1
    assert "learned seed 0" in merged.refused[0] and "top1@24=50.00% " in merged.refused[0]
    assert "top1@24=55.00%" in merged.refused[0]
    assert [r["top1"]["24"] for r in Rows(home).finished()] == [50.0, 20.0]


def test_a_checked_row_finishes_a_run_whose_only_ok_row_was_set_aside(planned, tmp_path):
    unchecked = make_row(planned, "none", 0, compiled=True, compile_check=None)
    unchecked["config"]["compile"] = True
    home = write_rows(tmp_path / "home", [unchecked])
    assert Rows(home).finished() == []  # set aside: no result, here and for merge alike
    merged = merge(archive_of(tmp_path, [make_row(planned, "none", 0)]), home)
    assert merged.rows == 1 and merged.refused == [] and len(Rows(home).finished()) == 1


def test_merging_twice_adds_nothing_and_writes_nothing(planned, tmp_path, home):
    source = archive_of(tmp_path, [make_row(planned, "none", 0)])
    assert merge(source, home).rows == 1
    before = snapshot(home)
    again = merge(source, home)
    assert (again.rows, again.already) == (0, 1) and snapshot(home) == before


def test_predictions_travel_with_their_rows_and_are_never_overwritten(planned, tmp_path, home):
    slot = write_rows(tmp_path / "slot", [make_row(planned, "none", 0)])
    (slot / "predictions").mkdir()
    (slot / "predictions/a.json").write_text("slot\n")
    (slot / "predictions/b.json").write_text("slot\n")
    (home / "predictions").mkdir()
    (home / "predictions/a.json").write_text("home\n")
    source = pack(slot, tmp_path / "slot.tar.gz")
    with tarfile.open(source) as tar:
        assert "predictions/b.json" in tar.getnames()
    merged = merge(source, home)
    assert merged.files == ["predictions/b.json"] and merged.kept == ["predictions/a.json"]
    assert (home / "predictions/a.json").read_text() == "home\n" and (home / "predictions/b.json").is_file()


# --- archives that are not what they say ------------------------------------------------------------------------


def _tar(path: Path, members) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


@pytest.mark.parametrize("make, said", [
    (lambda p: _tar(p, [_file("../escape.txt")]), "member '../escape.txt' points outside the folder"),
    (lambda p: _tar(p, [_link("analysis/x.csv", "/etc/passwd")]), "member 'analysis/x.csv' is a link"),
    (lambda p: _tar(p, [_link("runs.jsonl", "../../outside", tarfile.LNKTYPE)]), "member 'runs.jsonl' is a link"),
    (lambda p: _tar(p, [_file("notes.txt")]), "member 'notes.txt' is not part of a packed results folder"),
    (lambda p: (p.write_text("not an archive\n"), p)[1], "is not a readable .tar.gz"),
    (lambda p: _tar(p, []), "holds no rows"),
    (lambda p: _tar(p, [_file("runs.jsonl", b"")]), "holds no rows"),
], ids=["dot-dot", "symlink", "hardlink", "stray-member", "text-file", "empty-archive", "empty-rows"])
def test_a_bad_archive_is_one_line_and_changes_nothing(tmp_path, home, make, said):
    assert said in refused(make(tmp_path / "bad.tar.gz"), home)
    assert not (tmp_path / "escape.txt").exists()


def test_a_gzip_cut_in_half_is_one_line(planned, tmp_path, home):
    data = archive_of(tmp_path, [make_row(planned, "none", s) for s in range(3)]).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    assert "is not a readable .tar.gz" in refused(cut, home)


# --- the commands ----------------------------------------------------------------------------------------------


def test_merge_on_the_command_line_answers_a_bad_archive_in_one_line(planned, tmp_path, home, capsys):
    path, _ = planned
    bad = _tar(tmp_path / "bad.tar.gz", [_file("../escape.txt")])
    before = snapshot(home)
    assert study_main(["merge", f"study={path}", f"results_dir={home}", f"tables_dir={tmp_path / 't'}",
                       f"from={bad}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: from: ") and err.count("\n") == 1 and snapshot(home) == before
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("target, said", [
    ("{home}/runs.jsonl", "error: pack: must name a .tar.gz file"),
    ("{home}/analysis/probe/x.csv", "error: pack: must name a .tar.gz file"),
    ("{other}", "exists and is not a packed results folder; pack= never overwrites what it did not write"),
    ("{home}/runs.jsonl/slot.tar.gz", "cannot be written"),
])
def test_pack_refuses_a_target_it_did_not_write_before_any_run(planned, tmp_path, home, capsys, target, said):
    other = gzip.open(tmp_path / "other.tar.gz", "wb")
    other.write(b"someone else's data")
    other.close()
    before, kept = snapshot(home), (tmp_path / "other.tar.gz").read_bytes()
    target = target.format(home=home, other=tmp_path / "other.tar.gz")
    assert study_main(["continue", f"study={planned[0]}", f"results_dir={home}", f"pack={target}"]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
    assert snapshot(home) == before and (tmp_path / "other.tar.gz").read_bytes() == kept


def test_pack_writes_over_its_own_archive(planned, tmp_path, home):
    target = pack(home, tmp_path / "slot.tar.gz")
    write_rows(home, [make_row(planned, "none", 0)])
    pack(home, target)
    with tarfile.open(target) as tar:
        assert b"none" in tar.extractfile("runs.jsonl").read()


def test_tables_with_a_bad_grid_file_is_one_line(tmp_path, monkeypatch, capsys):
    import cpvt_lab.ablations as ablations

    grids = tmp_path / "grids"
    grids.mkdir()
    for path in ablations.FOLDERS["grid"].glob("*.yaml"):
        (grids / path.name).write_text(path.read_text())
    (grids / "table1.yaml").write_text("ablations: [none\n  bad: yaml:\n")
    monkeypatch.setitem(ablations.FOLDERS, "grid", grids)
    write_rows(tmp_path / "rows", [])
    assert tables_main([f"results_dir={tmp_path / 'rows'}", f"tables_dir={tmp_path / 't'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: grid 'table1'") and err.count("\n") == 1


# --- rows from before data identities were recorded ----------------------------------------------------------


@pytest.mark.slow  # trains one smoke run on the project's archive (about a minute on 2 CPU cores)
def test_a_committed_smoke_row_reproduces_on_the_project_archive(tmp_path):
    """The evidence that rows without data_identity were made on the project's archive: the current code, on that
    archive, gives the first committed smoke row's run_id and top-1 exactly."""
    from cpvt_lab import compose
    from cpvt_lab.data import DataError
    from cpvt_lab.data.archive import locate_jpeg_archive, sha256_of
    from cpvt_lab.fingerprint import run_id
    from cpvt_lab.train import run_experiment

    try:
        archive = locate_jpeg_archive(None)  # $CPVT_CIFAR10_JPEG, else ../shared/data beside the checkout
    except DataError as err:
        pytest.skip(str(err))
    assert sha256_of(archive) == PROJECT_ARCHIVE_SHA256
    committed = Rows(Path(__file__).parents[1] / "results/smoke").all[0]
    assert "data_identity" not in committed and committed["dataset"] == "CIFAR-10, JPEG copy"
    cfg = compose(committed["ablation"], ["scale=smoke", f"seed={committed['seed']}", "data.train_size=24",
                                          "data.eval_sizes=[24,32,40,48]", f"data.archive={archive}",
                                          f"results_dir={tmp_path / 'results'}", f"output_dir={tmp_path / 'out'}"])
    assert run_id(cfg) == committed["run_id"]
    row = run_experiment(cfg)
    assert row["top1"] == committed["top1"] and row["data_identity"]["sha256"] == PROJECT_ARCHIVE_SHA256


def test_status_and_tables_read_a_rows_file_that_is_not_text_and_name_its_lines(planned, tmp_path, capsys):
    path, _ = planned
    home = tmp_path / "home"
    archive = archive_of(tmp_path, [make_row(planned, "none", 0)])
    home.mkdir()
    (home / "runs.jsonl").write_bytes(archive.read_bytes())  # what pack= once left where the rows were
    assert study_main(["status", f"study={path}", f"results_dir={home}"]) == 0
    captured = capsys.readouterr()
    assert "0 of 9 runs in" in captured.out and "not UTF-8 text" in captured.err
    assert tables_main([f"results_dir={home}", f"tables_dir={tmp_path / 't'}"]) == 0


def test_merge_on_the_command_line_reports_a_refused_row_and_merges_the_rest(planned, tmp_path, home, capsys):
    path, _ = planned
    source = archive_of(tmp_path, [make_row(planned, "learned", 0, top1=55.0), make_row(planned, "none", 0)])
    assert study_main(["merge", f"study={path}", f"results_dir={home}", f"tables_dir={tmp_path / 't'}",
                       f"from={source}"]) == 0
    out = capsys.readouterr().out
    assert "1 rows added, 0 already there, 1 refused" in out and "refused: line 1: learned seed 0" in out
    assert "2 of 9 runs in" in out
