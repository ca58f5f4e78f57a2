"""Every command a page gives runs as written: each ``python -m cpvt_lab.X ...`` line of the README, docs/, the
tables' pages and the scripts' comments is read by its command's own parser (its words, names and keys) without
running any work. A placeholder (``NAME``, ``FILE``, ``[KEY=VALUE]``) marks a line as a pattern, not a command."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cpvt_lab import analyze, grid, sweep, tables
from cpvt_lab.ablations import load_grid, load_study
from cpvt_lab.cli import check_override, name_first, parse_words
from cpvt_lab.config import compose
from cpvt_lab.provenance import REPO_ROOT
from cpvt_lab.run import HYDRA_FLAGS
from cpvt_lab.study import command as study

PAGES = ["README.md", "docs/*.md", "paper_tables/*.md", "paper_tables/*/*.md", "scripts/*.sh", "notebooks/*.py"]
COMMAND = re.compile(r"python -m cpvt_lab\.([a-z_]+)((?: +[^\s`|#)]+)*)")
# a word that stands for something the reader fills in, or an optional part of a usage pattern
NAME_FIRST = {"analyze", "grid", "sweep"}  # commands whose first word names what they run: bare, they are a name
PLACEHOLDER = re.compile(r"\b[A-Z]{1,}[A-Z_]*\b|\.\.\.|^\[|\$")


def doc_commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for pattern in PAGES:
        for page in sorted(REPO_ROOT.glob(pattern)):
            for match in COMMAND.finditer(page.read_text()):
                words = match.group(2).split()
                if any(PLACEHOLDER.search(w.partition("=")[2] or w) for w in words):
                    continue
                if not words and match.group(1) in NAME_FIRST:  # prose naming the command, not a command line
                    continue
                found.append((str(page.relative_to(REPO_ROOT)), match.group(1), words))
    return found


def check_words(command: str, words: list[str]) -> None:
    """What the command's own main reads from these words before it starts any work (it raises on a bad one)."""
    if {"--help", "-h"} & set(words):  # every command prints its usage (test_commands)
        return
    if command == "run":
        _, overrides = parse_words(words, {}, flags=HYDRA_FLAGS)
        if not any(w in ("-m", "--multirun") for w in overrides):  # a multirun's commas are sweeps, not values
            named = [w.partition("=")[2] for w in overrides if w.startswith("ablation=")]
            compose(named[-1] if named else None, [w for w in overrides if not w.startswith("ablation=")])
    elif command in ("grid", "sweep"):
        name, rest = name_first(words, "grid", [])
        load_grid(name)
        for word in parse_words(rest, (grid if command == "grid" else sweep).OPTIONS)[1]:
            check_override(word)
    elif command == "tables":
        _, extra = parse_words(words, tables.OPTIONS)
        assert not extra, f"unknown keys {extra}"
    elif command == "analyze":
        analyze.parse(words)
    elif command == "study":
        action = words.pop(0) if words and "=" not in words[0] else "status"
        assert action in study.ACTIONS, action
        args, _ = parse_words(words, study.OPTIONS)
        load_study(args["study"] or study.DEFAULT_STUDY)
    else:  # bench, compiled: their words are checked by test_commands' runs; here only their form
        parse_words(words, {}, flags=())


COMMANDS = doc_commands()


def test_the_pages_give_commands_to_check():
    pages = {page for page, _, _ in COMMANDS}
    assert {"README.md", "paper_tables/README.md", "paper_tables/cpu/README.md", "docs/study.md"} <= pages
    assert {command for _, command, _ in COMMANDS} >= {"run", "grid", "tables", "study", "analyze"}


@pytest.mark.parametrize("page, command, words", COMMANDS,
                         ids=[f"{p}:{c} {' '.join(w)}"[:90] for p, c, w in COMMANDS])
def test_every_command_on_a_page_is_accepted_by_its_parser(page, command, words):
    check_words(command, list(words))


@pytest.mark.parametrize("command, words", [
    ("tables", ["results_dir=results/cpu", "out_of_place=1"]), ("study", ["study=nope"]), ("grid", ["nope"]),
    ("analyze", ["nothing"]), ("run", ["ablation=nope"])])
def test_the_check_refuses_a_bad_command(command, words):
    with pytest.raises(Exception):
        check_words(command, list(words))


def test_the_tables_index_names_every_results_folder_and_links_only_to_files_that_exist():
    index = REPO_ROOT / "paper_tables" / "README.md"
    text = index.read_text()
    for folder in sorted(p.name for p in (REPO_ROOT / "results").iterdir() if (p / "runs.jsonl").exists()):
        if (REPO_ROOT / "paper_tables" / folder).is_dir():
            assert f"results_dir=results/{folder} tables_dir=paper_tables/{folder}" in text, folder
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (index.parent / link).exists(), f"dead link {link} in {index}"
