"""Where a study stands: which of its planned runs have a row, per grid, and what they took."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..ablations import Study
from ..results import Rows
from .plan import PlannedRun


@dataclass
class Standing:
    study: Study
    planned: list[PlannedRun]
    rows: dict[str, dict[str, Any]]  # run_id -> its success row, for the planned runs that have one

    @property
    def remaining(self) -> list[PlannedRun]:
        return [r for r in self.planned if r.run_id not in self.rows]

    def summary(self, width: int = 6) -> str:
        """One line: the study (its name padded to ``width``), its runs in, where its rows and tables are, and
        whether it is complete."""
        s, done, planned = self.study, len(self.rows), len(self.planned)
        state = "complete" if done == planned else ("not started" if not done else f"{planned - done} to run")
        return (f"{s.name:<{width}} {done:>3} of {planned:<3} runs in {s.results_dir}/, tables in {s.tables_dir}/ ({state}; "
                f"{' '.join(s.overrides) or 'the default scale'})")

    def report(self) -> str:
        """The status page: counts per grid, the device time, devices and versions, what comes next."""
        s, done = self.study, len(self.rows)
        lines = [f"study {s.name}: {done} of {len(self.planned)} runs in ({s.results_dir}/runs.jsonl); "
                 f"seeds {', '.join(map(str, s.seeds))}; {' '.join(s.overrides)}"]
        for grid in s.grids:
            mine = [r for r in self.planned if r.in_grid(grid)]
            have = sum(r.run_id in self.rows for r in mine)
            lines.append(f"  {grid:<14} {have:>3} of {len(mine):<3}" + ("  complete" if have == len(mine) else ""))
        rows = list(self.rows.values())
        if rows:
            minutes = sum(r.get("wall_seconds", 0.0) for r in rows) / 60
            lines += [f"device time in the rows: {minutes:.1f} min (the runs' wall time, evaluation and compilation "
                      "included; set-up and analyses not)",
                      "devices: " + "; ".join(_distinct(rows, lambda r: r.get("device"))),
                      "versions: " + "; ".join(_distinct(rows, _versions)),
                      "commands: " + "; ".join(_distinct(rows, lambda r: r.get("command")))]
        if self.remaining:
            lines.append(f"next, in order ({len(self.remaining)} left): "
                         + ", ".join(f"{r.what()} seed {r.seed}" for r in self.remaining[:8])
                         + (", ..." if len(self.remaining) > 8 else ""))
            lines.append(f"continue with: {s.command()} [budget_seconds=S]")
        else:
            lines.append("every planned run is in")
        return "\n".join(lines)


def standing(study: Study, planned: Sequence[PlannedRun], rows: Rows) -> Standing:
    ids = {r.run_id for r in planned}
    return Standing(study, list(planned), {r["run_id"]: r for r in rows.finished() if r["run_id"] in ids})


def _versions(row: dict[str, Any]) -> str:
    v = row.get("versions") or {}
    return ", ".join(f"{k} {v[k]}" for k in ("torch", "timm", "pytorch_lightning") if k in v) or "not recorded"


def _distinct(rows: Sequence[dict[str, Any]], key) -> list[str]:
    return sorted({str(key(r)) for r in rows if key(r)}) or ["not recorded"]
