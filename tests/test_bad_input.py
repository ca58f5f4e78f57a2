"""Every row of docs/bad_input.md: the command line it shows exits with the status and message it shows,
and writes nothing. The table is the list of cases, so the two cannot drift apart."""
from __future__ import annotations

import gzip
import io
import re
import shlex
import sys
import tarfile
from pathlib import Path

import pytest

from cpvt_lab.models import POSITION_ENCODINGS
from cpvt_lab.provenance import REPO_ROOT
from cpvt_lab.run import main as run_main
from conftest import with_member, write_tiny_archive

TABLE = REPO_ROOT / "docs" / "bad_input.md"


def table_rows() -> list[tuple[str, str, int, str]]:
    """(what, overrides, exit status, message) for each row of the table's body."""
    rows = []
    for line in TABLE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[2].isdigit():
            spans = [re.search(r"`([^`]*)`", c) for c in cells[1::2]]
            rows.append((cells[0], spans[0].group(1), int(cells[2]), spans[1].group(1)))
    return rows


def make_fixtures(tmp: Path) -> None:
    """The files the table's rows point at as $TMP/..."""
    archive = write_tiny_archive(tmp / "tiny.tar.gz", train_per_class=2, test_per_class=1)
    data = archive.read_bytes()
    (tmp / "truncated.tar.gz").write_bytes(data[: len(data) // 2])
    middle = len(data) // 2
    (tmp / "corrupt.tar.gz").write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64])
                                          + data[middle + 64:])
    (tmp / "not_gzip.tar.gz").write_text("not an archive\n")
    with tarfile.open(tmp / "flat.tar.gz", "w:gz") as tar:  # images, but no train/<class>/ layout
        info = tarfile.TarInfo("img.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with_member(archive, tmp / "not_an_image.tar.gz", "cifar10/train/cat/0001.jpg", b"not an image\n")
    with_member(archive, tmp / "stray_file.tar.gz", "cifar10/train/cat/notes.txt", b"not an image\n")
    (tmp / "empty").mkdir()
    (tmp / "a_file").write_text("a file where a folder should be\n")
    (tmp / "runs_folder" / "runs.jsonl").mkdir(parents=True)  # a folder where the result rows go
    for split in ("train", "val"):  # images straight under train/ and val/: no class folders
        (tmp / "flat_imagefolder" / split).mkdir(parents=True)
        (tmp / "flat_imagefolder" / split / "0.jpg").write_bytes(b"")
    for split in ("train", "val"):  # two classes of one image each (check() reads names, not pixels)
        for c in ("a", "b"):
            (tmp / "imagefolder" / split / c).mkdir(parents=True)
            (tmp / "imagefolder" / split / c / "0.jpg").write_bytes(b"")
    assert gzip.decompress((tmp / "tiny.tar.gz").read_bytes())  # the intact one is intact


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("bad_input")
    make_fixtures(tmp)
    return tmp


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_the_table_has_a_row_for_each_kind_of_bad_input():
    keys = " ".join(overrides for _, overrides, _, _ in table_rows())
    for needed in ("ablation=", "model.size=", "model.pos.kernel=4", "model.pos.kernel=-1", "positions=[12]",
                   "data.train_size=", "class_token", "data.root=", "truncated", "corrupt", "results_dir=",
                   "seed=abc", "optim.lr=inf", "optim.lr=nan", "runs_folder", "not_an_image", "stray_file",
                   "data.subset=60000", "data.test_subset=", "data.augment=", "data.random_erasing=", "data.batch_size=64"):
        assert needed in keys, needed


@pytest.mark.parametrize("what,overrides,status,message", table_rows(), ids=[r[0] for r in table_rows()])
def test_bad_input_exits_with_the_documented_message_and_writes_nothing(
        what, overrides, status, message, fixtures, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CPVT_CIFAR10_JPEG", str(fixtures / "tiny.tar.gz"))
    monkeypatch.setenv("CPVT_CACHE_DIR", str(fixtures / "cache"))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.chdir(tmp_path)  # results/ and outputs/ would appear here
    monkeypatch.setattr(sys, "argv", ["cpvt_lab/run.py", *shlex.split(overrides.replace("$TMP", str(fixtures)))])
    before = snapshot(fixtures)
    with pytest.raises(SystemExit) as exit_info:
        run_main()
    assert exit_info.value.code == status
    said = message.replace("$TMP", str(fixtures)).replace("$ENCODINGS", str(sorted(POSITION_ENCODINGS)))
    assert said in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [] and snapshot(fixtures) == before
