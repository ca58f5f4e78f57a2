"""What the paper reports, as data: its tables (read from their grid files), claims and published figures.

A paper table is a grid file of ``ablations/grids/`` with a ``table:`` id (``cpvt_lab.ablations``). The same
file gives its ``title``, what it ``shows``, the paper's test resolutions ``paper_px`` (training one first) and
the ablations it trains, the rows of the table in order, each with the row of ``reference_numbers.csv`` it
reproduces (``[study, model, variant]``; nothing for an ablation the paper has no figure for). The tables come
in the order ``paper.yaml`` includes them, then by file name.
The paper's attention figures are drawn from the runs of the ``attention`` grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from .ablations import Grid, grid_ablations, load_grid, names

REFERENCE_CSV = Path(__file__).with_name("reference_numbers.csv")
ATTENTION_GRID = "attention"  # its ablations are the paper's figures: DeiT, DeiT without encoding, CPVT


def attention_ablations() -> tuple[str, ...]:
    """The ablations of the paper's attention figures, as the attention grid lists them."""
    return grid_ablations(ATTENTION_GRID)


@dataclass(frozen=True)
class PaperRow:
    """A row of reference_numbers.csv (its figures are looked up by metric ``top1@<px>``)."""
    study: str
    model: str
    variant: str


@dataclass(frozen=True)
class Cell:
    """An ablation's top-1 at a test size given by rank: 0 the training size, k the k-th above it."""
    ablation: str
    rank: int = 0


@dataclass(frozen=True)
class Claim:
    """A direction the paper reports (or, in a table's ``compare``, a question its grid asks): ``a - b > margin``
    ("greater") or ``a - b <= margin`` ("not_greater"), between two cells of one paper ``table``."""
    id: str
    table: str
    text: str
    a: Cell
    b: Cell
    direction: str = "greater"
    margin: float = 0.0

    def holds(self, a: float, b: float) -> bool:
        return a - b > self.margin if self.direction == "greater" else a - b <= self.margin


@dataclass(frozen=True)
class PaperTable:
    """One of the paper's tables: our ablations, each beside the paper's row it reproduces.

    ``paper_px`` are the paper's test resolutions, the first being its training one. Our
    test sizes are matched by rank: our training size to the paper's, the k-th size above
    it to the paper's k-th (CIFAR 24 / 32 / 40 / 48 px beside 224 / 384 / 448 / 512 px).
    ``measured``: the measured analyses whose headline numbers the table shows beside its top-1; ``compare``: the
    questions of the grid itself (not the paper's claims), each A - B judged as a claim is.
    """
    id: str
    grid: str
    title: str
    shows: str
    rows: tuple[tuple[str, Optional[PaperRow]], ...]
    paper_px: tuple[int, ...] = (224,)
    measured: tuple[str, ...] = ()
    compare: tuple[Claim, ...] = ()

    @property
    def ablations(self) -> list[str]:
        return [ablation for ablation, _ in self.rows]

    def paper_row(self, ablation: str) -> Optional[PaperRow]:
        return dict(self.rows).get(ablation)


def table_of(grid: Grid) -> Optional[PaperTable]:
    """The paper table a plain grid describes, or None for a grid that is no table (no ``table:`` key)."""
    if grid.table is None:
        return None
    spec, paper = grid.table, grid.table.get("paper") or {}
    rows = tuple((a, PaperRow(*paper[a]) if a in paper else None) for a in grid.ablations)
    compare = tuple(Claim(f"{spec['table']}:{i}", spec["table"], text, Cell(*a), Cell(*b))
                    for i, (text, a, b) in enumerate(spec.get("compare", [])))
    return PaperTable(spec["table"], grid.name, spec["title"], spec["shows"], rows, tuple(spec.get("paper_px", [224])),
                      tuple(spec.get("measured", [])), compare)


def _tables() -> tuple[PaperTable, ...]:
    included = [g.name for g in load_grid("paper")]
    order = {name: i for i, name in enumerate(included)}
    plain = [g for name in sorted(names("grid"), key=lambda n: (order.get(n, len(order)), n))
             for g in load_grid(name) if g.name == name]  # each grid once, as its own file states it
    return tuple(t for t in map(table_of, plain) if t is not None)


TABLES: tuple[PaperTable, ...] = _tables()
TABLE_BY_ID = {t.id: t for t in TABLES}
T1, T2, T3 = "table1_pe_strategies", "table2_resolution", "table3_cls_vs_gap"
POS, EXTRA = "peg_position", "extra_params"


CLAIMS: tuple[Claim, ...] = (
    Claim("t1_learned_beats_none", T1, "a learned table beats no encoding", Cell("learned"), Cell("none")),
    Claim("t1_learned_beats_relative", T1, "a learned table beats the 2-D relative bias",
          Cell("learned"), Cell("relative")),
    Claim("t1_relative_beats_none", T1, "the 2-D relative bias beats no encoding", Cell("relative"), Cell("none")),
    Claim("t1_peg_beats_learned_larger", T1, "PEG beats the learned table at the first larger resolution",
          Cell("peg", 1), Cell("learned", 1)),
    Claim("t1_peg_gains_larger", T1, "PEG gains at the first larger resolution (no fine-tuning)",
          Cell("peg", 1), Cell("peg", 0)),
    Claim("t1_learned_loses_larger", T1, "the learned table loses at the first larger resolution",
          Cell("learned", 0), Cell("learned", 1)),
    Claim("t2_peg_beats_learned_largest", T2, "PEG beats the interpolated learned table at the largest resolution",
          Cell("peg", 3), Cell("learned", 3)),
    Claim("t2_peg0to5_beats_peg", T2, "PEGs after blocks 0-5 beat one PEG at the training resolution",
          Cell("peg_0to5"), Cell("peg")),
    Claim("t3_gap_adds_1pt_peg0to5", T3, "GAP adds more than 1 point to CPVT (PEGs at 0-5)",
          Cell("peg_0to5_gap"), Cell("peg_0to5"), margin=1.0),
    Claim("t3_gap_helps_peg", T3, "GAP helps CPVT with one PEG", Cell("peg_gap"), Cell("peg")),
    Claim("pos_0_beats_m1", POS, "a PEG at position 0 beats one at -1", Cell("peg"), Cell("peg_at_m1")),
    Claim("pos_0_beats_10", POS, "a PEG at position 0 beats one at 10", Cell("peg"), Cell("peg_at_10")),
    Claim("pos_27x27_recovers_m1", POS, "a 27x27 PEG at -1 beats a 3x3 PEG at -1",
          Cell("peg27_at_m1"), Cell("peg_at_m1")),
    Claim("extra_frozen_beats_none", EXTRA, "a PEG frozen at random init beats no encoding",
          Cell("frozen_peg"), Cell("none")),
    Claim("extra_frozen_beats_conv1x1", EXTRA, "a frozen random PEG beats 12 stacked 1x1 convs",
          Cell("frozen_peg"), Cell("conv1x1_stack")),
    Claim("extra_conv1x1_no_better", EXTRA, "12 stacked 1x1 convs are no better than no encoding (within 1 point)",
          Cell("conv1x1_stack"), Cell("none"), direction="not_greater", margin=1.0),
    Claim("extra_learned_beats_frozen", EXTRA, "a learned PEG beats a frozen random one",
          Cell("peg"), Cell("frozen_peg")),
    Claim("extra_padding_beats_nopad", EXTRA, "zero padding beats no padding (padding carries position)",
          Cell("peg"), Cell("peg_nopad")),
)


def reference() -> pd.DataFrame:
    """The published figures, each with its status and source."""
    return pd.read_csv(REFERENCE_CSV)


def paper_value(table: PaperTable, ablation: str, rank: int, ref: pd.DataFrame) -> tuple[Optional[float], str]:
    """The paper's figure (and its status) for an ablation at the test size of this rank."""
    row = table.paper_row(ablation)
    if row is None or not 0 <= rank < len(table.paper_px):
        return None, ""
    hit = ref[(ref.study == row.study) & (ref.model == row.model) & (ref.variant == row.variant)
              & (ref.metric == f"top1@{table.paper_px[rank]}")]
    return (float(hit.value.iloc[0]), str(hit.status.iloc[0])) if len(hit) else (None, "")
