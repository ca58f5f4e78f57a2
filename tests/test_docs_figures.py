"""Every figure the manual quotes is backed: by a committed file under results/ that its paragraph names and
that holds the number, or by a plain statement that it is a one-off measurement outside this repository
(or an assumption, not a measurement). A figure with neither is one nobody can check or repeat.

Two kinds of figure are looked for: a throughput (a number before images/s, img/s or images per second) and a
result on a named GPU (a percentage, or a decimal in a table, in a paragraph naming the GPU; a table counts
as part of the paragraph that introduces it). The GPU scripts' comments are read the same way.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([*ROOT.glob("docs/*.md"), *ROOT.glob("scripts/*.sh")])
SAID_PLAINLY = ("one-off measurement outside this repository", "an assumption, not a measurement")
THROUGHPUT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(?:images/s|img/s|images per second)")
GPU = re.compile(r"\b(?:H100|H200|A100|B200|L40S|V100)\b")
GPU_FIGURE = re.compile(r"\d+(?:\.\d+)?%|\|\s*\d+\.\d+")
RESULTS_FILE = re.compile(r"results/[\w./-]+\.(?:jsonl|json|csv|log|md)\b")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def paragraphs(text: str) -> list[str]:
    """Blocks between blank lines, whitespace collapsed; a table joins the paragraph before it."""
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        if block.lstrip().startswith("|") and blocks:
            blocks[-1] += " " + block
        else:
            blocks.append(block)
    return [" ".join(b.split()) for b in blocks]


def held(paragraph: str) -> list[float]:
    """Every number in the committed results files the paragraph names."""
    files = [ROOT / name for name in RESULTS_FILE.findall(paragraph)]
    return [float(n) for f in files if f.is_file() for n in NUMBER.findall(f.read_text())]


def holds(values: list[float], figure: str) -> bool:
    """Whether a value rounds to ``figure`` as written (417 holds 416.64; 1.006 holds 1.0058)."""
    number = figure.replace(",", "")
    places = len(number.partition(".")[2])
    return any(round(v, places) == float(number) for v in values)


def unbacked(text: str) -> list[str]:
    found = []
    for paragraph in paragraphs(text):
        if any(said in paragraph for said in SAID_PLAINLY):
            continue
        found += [f"{f} images/s" for f in THROUGHPUT.findall(paragraph) if not holds(held(paragraph), f)]
        if GPU.search(paragraph) and GPU_FIGURE.search(paragraph) and not held(paragraph):
            found.append(f"a result on a GPU: {paragraph[:120]}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_figure_quoted_is_backed_by_a_committed_file_or_said_to_be_from_outside(page):
    assert unbacked(page.read_text()) == []


def test_the_figure_check_sees_an_unbacked_figure_and_accepts_a_backed_one():
    bench = "results/bench/cpu-2core-smoke.json"  # plain timm step 416.64 images/s, the grid 205.0
    assert unbacked("timm ran at 417 images/s.") == ["417 images/s"]
    assert unbacked(f"With `json={bench}`: 417 images/s; the grid 205 images/s.") == []
    assert unbacked(f"With `json={bench}`: 418 images/s.") == ["418 images/s"]
    assert unbacked("On one H100 it ran at 53,005 images/s (a one-off measurement outside this\nrepository).") == []
    assert len(unbacked("On one H100 it collapsed:\n\n| run | top-1 |\n|---|---|\n| peg | 27.95 |")) == 1
    assert unbacked("On one H100 the study has 0 of 54 runs.") == []
