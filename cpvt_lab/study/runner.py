"""The one runner of many runs: planned runs trained in their order, whole, within a budget, resumably.

A run with a success row is skipped, an interrupted one resumes from its last checkpoint, a failed one is
recorded and the runner goes on, and a run another process is training is waited for. ``budget_seconds``
starts no run that would not end within it, judged by the longest run so far (failed runs included; the
first always starts), so a short slot ends with whole runs and rows and the next call goes on.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ..results import Rows, results_path, top1_line
from .plan import PlannedRun, check_runs_data

WAIT_SECONDS = 5.0  # between looks at a run that another process is training


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@dataclass
class RunReport:
    trained: list[PlannedRun] = field(default_factory=list)
    skipped: list[PlannedRun] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str]] = field(default_factory=list)
    elsewhere: list[PlannedRun] = field(default_factory=list)  # finished by another process meanwhile
    not_started: list[PlannedRun] = field(default_factory=list)  # left for later: the time budget was spent

    def summary(self, name: str, results_dir: str) -> str:
        total = len(self.trained) + len(self.skipped) + len(self.failed) + len(self.elsewhere)
        lines = [f"grid {name}: {total} runs; trained {len(self.trained)}, already done {len(self.skipped)}, "
                 f"finished by another process {len(self.elsewhere)}, failed {len(self.failed)} "
                 f"(rows in {results_path(results_dir)})"]
        if not self.trained and not self.failed:
            lines.append("  nothing new to train: every run already has a success row")
        lines += [f"  trained: {r.label()}" for r in self.trained]
        lines += [f"  skipped (already done): {r.label()}" for r in self.skipped]
        lines += [f"  finished by another process: {r.label()}" for r in self.elsewhere]
        lines += [f"  FAILED: {r.label()}: {reason}" for r, reason in self.failed]
        if self.not_started:
            lines.append(f"  not started, for the time budget ({len(self.not_started)}; run the same command "
                         "again to go on): " + ", ".join(r.label() for r in self.not_started))
        return "\n".join(lines)


def run_planned(name: str, runs: Sequence[PlannedRun], rows: Optional[Rows] = None, out=sys.stdout,
                budget_seconds: float = 0,
                after_run: Optional[Callable[[PlannedRun, dict[str, Any]], None]] = None) -> RunReport:
    """Run, in their order, the planned ``runs`` (one results folder, whose ``rows`` the caller read; each run's
    row is added to them) that have no success row yet; ``after_run(run, row)`` follows each run this call
    trained (a study measures and packs it there). The data is checked before the first run trains."""
    from ..train import run_experiment  # Lightning loads only once the plan is known to be valid

    results_dir = runs[0].cfg.results_dir
    rows = Rows(results_dir) if rows is None else rows
    done = {r["run_id"] for r in rows.finished()}
    report = RunReport(skipped=[r for r in runs if r.run_id in done])
    pending = [r for r in runs if r.run_id not in done]
    check_runs_data(pending)
    print(f"grid {name}: {len(runs)} runs, {len(report.skipped)} already done, {len(pending)} to train",
          file=out, flush=True)
    started, count, longest = time.time(), len(pending), 0.0
    pending, longest = _run_stacks(pending, report, rows, out, budget_seconds, started, after_run)
    while pending:
        busy = []
        for i, run in enumerate(pending):
            if budget_seconds and longest and time.time() - started + longest > budget_seconds:
                report.not_started = [*busy, *pending[i:]]
                busy = []
                break
            _print_progress(run, report, count, started, out)
            run_started = time.time()
            try:
                row = run_experiment(run.cfg)
            except Exception as err:  # noqa: BLE001 - run_experiment wrote the failed row; the runner goes on
                report.failed.append((run, f"{type(err).__name__}: {err}"))
                # a failed run took time too: without it, a call of only failures would ignore its budget
                longest = max(longest, time.time() - run_started)
                print(f"  failed: {report.failed[-1][1]}", file=out, flush=True)
                continue
            if row.get("in_progress"):
                busy.append(run)
                print("  another process is training it; coming back to it", file=out, flush=True)
            elif _record(run, row, report, rows, after_run, out, f"done in {duration(row['wall_seconds'])}"):
                longest = max(longest, time.time() - run_started)  # what follows a run counts as its time
        if busy:
            time.sleep(WAIT_SECONDS)
        pending = busy
    print(report.summary(name, results_dir), file=out, flush=True)
    return report


def _run_stacks(pending: list[PlannedRun], report: RunReport, rows: Rows, out, budget_seconds: float,
                started: float, after_run) -> tuple[list[PlannedRun], float]:
    """The seeds of one ablation as one stack wherever stacking is on (``stack=auto`` on a GPU); each seed's row
    as its separate run's. What is left (runs that cannot stack, a stack that failed) trains run by run after."""
    from ..stacked.eligibility import stackable_groups
    from ..stacked.runs import run_stack

    longest, handled = 0.0, set()
    for group in stackable_groups([r.cfg for r in pending]):
        runs = [pending[i] for i in group]
        if budget_seconds and longest and time.time() - started + longest > budget_seconds:
            break
        print(f"stack of {len(runs)}: " + ", ".join(r.label() for r in runs), file=out, flush=True)
        stack_started = time.time()
        try:
            outcome = run_stack([r.cfg for r in runs], out)
        except Exception as err:  # noqa: BLE001 - its seeds train separately instead
            print(f"  stack failed ({type(err).__name__}: {err}); its runs train one by one", file=out, flush=True)
            continue
        finally:
            longest = max(longest, time.time() - stack_started)
        for run, row in zip(runs, outcome):
            if row is None:
                continue
            handled.add(run.run_id)
            _record(run, row, report, rows, after_run, out, f"done (stacked): {run.label()}")
    return [r for r in pending if r.run_id not in handled], longest


def _record(run: PlannedRun, row: dict[str, Any], report: RunReport, rows: Rows, after_run, out, said: str) -> bool:
    """A run's row added to the rows and the report: finished elsewhere meanwhile, or trained here (said, then
    ``after_run``); whether it was trained here."""
    if row.get("skipped"):
        report.elsewhere.append(run)
        rows.add({k: v for k, v in row.items() if k != "skipped"})
        return False
    report.trained.append(run)
    rows.add(row)
    print(f"  {said}: {top1_line(row)}", file=out, flush=True)
    if after_run is not None:
        after_run(run, row)
    return True


def _print_progress(run: PlannedRun, report: RunReport, count: int, started: float, out) -> None:
    """A count of the runs, and an ETA from the mean time of the runs trained so far."""
    finished = len(report.trained) + len(report.failed) + len(report.elsewhere)
    eta = ""
    if report.trained:
        elapsed = time.time() - started
        eta = f"; {duration(elapsed)} elapsed, about {duration(elapsed / finished * (count - finished))} left"
    print(f"[{min(finished + 1, count)}/{count}{eta}] {run.label()} (grid: {', '.join(run.grids)})",
          file=out, flush=True)
