"""Analyses of finished runs: ``python -m cpvt_lab.analyze ANALYSIS [run_id=ID | ablations=[a,b]] [KEY=VALUE ...]``.

ANALYSIS is one of
{analyses}

Keys (all optional): results_dir=outputs/results, tables_dir=outputs/tables, run_id=..., ablations=[...]
(the committed smoke study: results_dir=results/smoke tables_dir=paper_tables/smoke; out_dir= is the old name
of tables_dir); for a measured analysis also images=256 (test images), size=<px> (default: the run's training
size), seed=0 (probe split), and each analysis's own keys:
{keys}
(equivariance: shifts default 1 .. 2 x patch, fill zeros|cyclic; probe: blocks default all).
The measured analyses (``cpvt_lab.analysis.kinds``) store one CSV per run under
<results_dir>/analysis/<kind>/; every ANALYSIS then rewrites its own table in tables_dir
(``python -m cpvt_lab.tables`` rewrites them all).
"""
from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

from .analysis.folder import ResultsFolder
from .analysis.kinds import COMPUTED, MEASURED
from .analysis.measures import runs, store
from .analysis.measures.measure import measure_run
from .analysis.pages import report
from .cli import UsageError, names_option, parse_words, run_command
from .models import SIZES
from .results import DEFAULT_RESULTS_DIR, DEFAULT_TABLES_DIR, Rows

FOLDERS = {"results_dir": DEFAULT_RESULTS_DIR, "tables_dir": DEFAULT_TABLES_DIR}
SELECTING = {"run_id": "", "ablations": None}  # a run_id is text as typed: YAML would read "000123" as a number
MEASURING = {"images": 256, "size": None, "seed": 0}
# each analysis and its keys with their defaults
ANALYSES = {**{name: {**FOLDERS, **SELECTING, **MEASURING, **a.options} for name, a in MEASURED.items()},
            **{name: {**FOLDERS, **a.options} for name, a in COMPUTED.items()}}
HELP = __doc__.format(
    analyses="\n".join(f"  {name:<13} {a.about}" for name, a in {**MEASURED, **COMPUTED}.items()),
    keys="\n".join(f"  {name}: " + " ".join(f"{k}={v}" for k, v in a.options.items()) for name, a in MEASURED.items()))


def parse(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The analysis and its settings (defaults filled in); every key and value checked before any work."""
    if not argv or argv[0] not in ANALYSES:
        raise UsageError(argv[0] if argv else "ANALYSIS", f"first argument must be one of {', '.join(ANALYSES)} "
                         "(python -m cpvt_lab.analyze --help)")
    kind = argv[0]
    args, unknown = parse_words(argv[1:], ANALYSES[kind])
    if unknown:
        keys = sorted(w.partition("=")[0] for w in unknown)
        raise UsageError(kind, f"unknown key(s) {keys}; valid: {', '.join(ANALYSES[kind])}")
    if "run_id" in args:
        args["run_id"] = args["run_id"] or None
    if args.get("run_id") is not None and args.get("ablations") is not None:
        raise UsageError("run_id", "give run_id=... or ablations=[...], not both")
    if args.get("ablations") is not None:
        args["ablations"] = names_option(args["ablations"], "ablations")
    for key, least in (("images", 2), ("size", 2), ("seed", 0), ("block", 0)):
        value = args.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= least):
            raise UsageError(key, f"must be an integer >= {least}, got {value!r}")
    if kind in MEASURED:
        MEASURED[kind].check(args)
    return kind, args


def check_run(row: dict[str, Any], kind: str, args: dict[str, Any]) -> None:
    """Everything that could stop a run's analysis half-way, checked up front."""
    runs.checkpoint_path(row)
    geometry = SIZES[runs.run_config(row).model.size]
    patch, depth, size = geometry["patch_size"], geometry["depth"], args["size"] or row["train_size"]
    where = f"run {row['run_id']} ({row['ablation']})"
    if size % patch:
        raise UsageError("size", f"{size} is not a multiple of the patch size {patch} of {where}")
    try:
        MEASURED[kind].check(args, size, depth)
    except ValueError as err:
        raise ValueError(f"{err} ({where})") from None


def measure_runs(kind: str, args: dict[str, Any], rows: Rows) -> None:
    """Measure every selected run and store its CSV; all runs are checked before the first is measured."""
    rows = runs.select_rows(rows, args["run_id"], args["ablations"])
    if not rows:
        raise runs.RunSelectionError(f"no finished runs in {args['results_dir']}/runs.jsonl")
    for row in rows:
        check_run(row, kind, args)
    options = {k: args[k] for k in ("images", "size", "seed", *MEASURED[kind].options)}
    for row in rows:
        frame = measure_run(kind, row, **options)
        path = store.save(args["results_dir"], kind, frame)
        print(f"{kind}: {row['ablation']} seed={row['seed']} [{row['run_id']}] on {frame.images.iloc[0]} test "
              f"images at {frame['size'].iloc[0]} px -> {path}")


def _main(argv: list[str]) -> int:
    kind, args = parse(argv)
    folder = ResultsFolder(args["results_dir"])  # the rows, read once
    if kind in COMPUTED:
        written = COMPUTED[kind].write(folder, args["tables_dir"], **{k: args[k] for k in COMPUTED[kind].options})
    else:
        measure_runs(kind, args, folder.rows)
        written = report.write_measured(kind, folder, args["tables_dir"])
    print(f"{len(written)} files written to {args['tables_dir']}/: {', '.join(p.name for p in written)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command(_main, HELP, argv, errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
