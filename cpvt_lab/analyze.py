"""Analyses of finished runs: ``python -m cpvt_lab.analyze KIND [run_id=ID | ablations=[a,b]] [key=value ...]``.

KIND is one of
  equivariance  shift test images, measure prediction consistency and the feature maps' equivariance error
  probe         linear probe for each token's absolute position, per block
  resolution    top-1 against test resolution per encoding (from runs.jsonl; no model is loaded)
  claims        every claim of the paper with our verdict, effect size and n (from runs.jsonl)

Keys (all optional): results_dir=outputs/results, out_dir=outputs/tables, run_id=..., ablations=[...]
(the committed smoke study: results_dir=results/smoke out_dir=paper_tables);
for equivariance and probe also images=256 (test images), size=<px> (default: the run's training size),
seed=0 (probe split); equivariance: shifts=[1,...] (default 1 .. 2 x patch), fill=zeros|cyclic;
probe: blocks=[...] (default all).
equivariance and probe store one CSV per run under <results_dir>/analysis/<kind>/; every KIND then
rewrites its own table in out_dir (``python -m cpvt_lab.tables`` rewrites them all).
"""
from __future__ import annotations

import sys
from typing import Any, Sequence

from omegaconf import OmegaConf

from .results import DEFAULT_RESULTS_DIR, DEFAULT_TABLES_DIR

KINDS = ("equivariance", "probe", "resolution", "claims")
COMMON = {"results_dir": DEFAULT_RESULTS_DIR, "out_dir": DEFAULT_TABLES_DIR, "run_id": None, "ablations": None}
MEASURING = {"images": 256, "size": None, "seed": 0}
KEYS = {"equivariance": {**COMMON, **MEASURING, "shifts": None, "fill": "zeros"},
        "probe": {**COMMON, **MEASURING, "blocks": None},
        "resolution": {k: v for k, v in COMMON.items() if k != "run_id"},
        "claims": {"results_dir": DEFAULT_RESULTS_DIR, "out_dir": DEFAULT_TABLES_DIR}}


class UsageError(ValueError):
    pass


def parse(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """KIND and its settings (defaults filled in); every key and value checked before any work."""
    if not argv or argv[0] not in KINDS:
        raise UsageError(f"first argument must be one of {', '.join(KINDS)}; got {argv[0] if argv else 'nothing'!r} "
                         "(python -m cpvt_lab.analyze --help)")
    kind, pairs = argv[0], list(argv[1:])
    odd = [p for p in pairs if "=" not in p]
    if odd:
        raise UsageError(f"expected key=value, got {odd}")
    # a run_id is hex text: YAML would read "000123" or "1e5f00" as a number
    raw_ids = {p.split("=", 1)[1] for p in pairs if p.startswith("run_id=")}
    given = OmegaConf.to_container(OmegaConf.from_dotlist([p for p in pairs if not p.startswith("run_id=")]))
    if raw_ids:
        given["run_id"] = raw_ids.pop()
    unknown = sorted(set(given) - set(KEYS[kind]))
    if unknown:
        raise UsageError(f"{kind}: unknown key(s) {unknown}; valid: {', '.join(KEYS[kind])}")
    args = {**KEYS[kind], **given}
    if args.get("run_id") is not None and args.get("ablations") is not None:
        raise UsageError("give run_id=... or ablations=[...], not both")
    if args.get("ablations") is not None and not (isinstance(args["ablations"], list) and args["ablations"]):
        raise UsageError(f"ablations must be a non-empty list like ablations=[peg,none], got {args['ablations']!r}")
    for key, least in (("images", 2), ("size", 2), ("seed", 0)):
        value = args.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= least):
            raise UsageError(f"{key} must be an integer >= {least}, got {value!r}")
    for key in ("shifts", "blocks"):
        value = args.get(key)
        if value is not None and not (isinstance(value, list) and value and all(isinstance(v, int) for v in value)):
            raise UsageError(f"{key} must be a non-empty list of integers like {key}=[4,8], got {value!r}")
    if kind == "equivariance":
        from .analysis.equivariance import FILLS
        if args["fill"] not in FILLS:
            raise UsageError(f"fill must be one of {FILLS}, got {args['fill']!r}")
    return kind, args


def check_run(row: dict[str, Any], kind: str, args: dict[str, Any]) -> None:
    """Everything that could stop a run's analysis half-way, checked up front."""
    from .analysis.runs import checkpoint_path, run_config
    from .models import SIZES

    checkpoint_path(row)
    geometry = SIZES[run_config(row).model.size]
    patch, depth, size = geometry["patch_size"], geometry["depth"], args["size"] or row["train_size"]
    where = f"run {row['run_id']} ({row['ablation']})"
    if size % patch:
        raise UsageError(f"size={size} is not a multiple of the patch size {patch} of {where}")
    if kind == "equivariance" and args["shifts"] and not all(0 < s < size for s in args["shifts"]):
        raise UsageError(f"shifts must lie in 1 .. {size - 1} px for {size} px images, got {args['shifts']}")
    if kind == "probe" and args["blocks"] and not all(0 <= b < depth for b in args["blocks"]):
        raise UsageError(f"blocks must lie in 0 .. {depth - 1} for {where}, got {args['blocks']}")


def measure_runs(kind: str, args: dict[str, Any]) -> None:
    """Measure every selected run and store its CSV; all runs are checked before the first is measured."""
    from .analysis import runs, store
    from .analysis.measure import measure_run

    rows = runs.select_rows(args["results_dir"], args["run_id"], args["ablations"])
    if not rows:
        raise runs.RunSelectionError(f"no finished runs in {args['results_dir']}/runs.jsonl")
    for row in rows:
        check_run(row, kind, args)
    options = {k: args[k] for k in ("images", "size", "seed", "shifts", "fill", "blocks") if k in args}
    for row in rows:
        frame = measure_run(kind, row, **options)
        path = store.save(args["results_dir"], kind, frame)
        print(f"{kind}: {row['ablation']} seed={row['seed']} [{row['run_id']}] on {frame.images.iloc[0]} test "
              f"images at {frame['size'].iloc[0]} px -> {path}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    try:
        kind, args = parse(argv)
        if kind in ("equivariance", "probe"):
            measure_runs(kind, args)
        from .analysis import claims, report, resolution
        if kind == "resolution":
            written = resolution.write_curve(args["results_dir"], args["out_dir"], args["ablations"])
        elif kind == "claims":
            written = claims.write_claims(args["results_dir"], args["out_dir"])
        else:
            written = report.write_measured(kind, args["results_dir"], args["out_dir"])
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(written)} files written to {args['out_dir']}/: {', '.join(p.name for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
