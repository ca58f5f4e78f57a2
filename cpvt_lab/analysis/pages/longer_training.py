"""Do the verdicts of a short study hold when its ablations train longer? ``longer_training.md`` and ``.csv``.

Two results folders, each one setting: the shorter study (the CPU study at 4 epochs) and the same ablations trained
longer (16 epochs, ``ablations/studies/cpu16.yaml``). Every claim the shorter one decided, at 95% alone or under
Holm, is set beside its verdict at the longer training, judged the same way on the longer runs (``judge_claims``;
the Holm family there is the claims that have runs). Written by ``python -m cpvt_lab.analyze longer_training
results_dir=LONGER tables_dir=DIR shorter=SHORTER``, and by the longer study's own commands (its ``longer_than``).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from ..measured import ComputedAnalysis
from .claims_page import difference, verdict_said
from .page_parts import regenerated_from

OPPOSITE = {"reproduced": "contradicted", "contradicted": "reproduced"}
# what became of a verdict decided at the shorter training, in the order the page counts them
OUTCOMES = ("holds under Holm", "holds at 95% alone", "not decided", "reversed", "no runs")
SIDES = ("shorter", "longer")
# what the page keeps of each side's claim line
KEPT = ("epochs", "a_n", "b_n", "diff", "diff_low", "diff_high", "p", "p_holm", "verdict", "verdict_holm")


def _one_setting(claims: pd.DataFrame, where: str) -> pd.DataFrame:
    """The claims of the folder's one setting, indexed by claim (claims without runs carry no setting)."""
    settings = claims.setting.dropna().unique()
    if len(settings) > 1:
        raise ValueError(f"{where}: {len(settings)} settings ({'; '.join(settings)}); compare folders of one "
                         "setting each")
    return claims.set_index("claim")


def outcome(shorter_verdict: str, longer: pd.Series) -> str:
    """What became of ``shorter_verdict`` (decisive) at the longer training, judged on the ``longer`` claim line."""
    if not (longer.a_n > 0 and longer.b_n > 0):
        return "no runs"
    if longer.verdict_holm == shorter_verdict:
        return "holds under Holm"
    if longer.verdict == shorter_verdict:
        return "holds at 95% alone"
    return "reversed" if longer.verdict == OPPOSITE[shorter_verdict] else "not decided"


def compare(shorter: pd.DataFrame, longer: pd.DataFrame) -> pd.DataFrame:
    """One line per claim decided at the shorter training (``claims.judge_claims`` frames of the two folders): both
    sides' A-B, interval, n and verdicts, and the ``outcome`` at the longer training."""
    short, long_ = _one_setting(shorter, "shorter"), _one_setting(longer, "longer")
    decided = short[short.verdict != "inconclusive"]
    lines = []
    for claim, s in decided.iterrows():
        if claim not in long_.index:
            raise ValueError(f"claim {claim!r} of the shorter folder is unknown to the longer one")
        l_ = long_.loc[claim]
        lines.append({"claim": claim, "text": s.text, "a": s.a, "b": s.b, "dataset": s.dataset,
                      **{f"{side}_{k}": line[k] for side, line in zip(SIDES, (s, l_)) for k in KEPT},
                      "outcome": outcome(s.verdict, l_)})
    columns = ["claim", "text", "a", "b", "dataset", *(f"{side}_{k}" for side in SIDES for k in KEPT), "outcome"]
    return pd.DataFrame(lines, columns=columns)


def _epochs(frame: pd.DataFrame, side: str) -> str:
    known = frame[f"{side}_epochs"].dropna()
    return f"{int(known.iloc[0])} epochs" if len(known) else "the longer training (no runs yet)"


def _side(r, side: str) -> str:
    n = min(getattr(r, f"{side}_a_n"), getattr(r, f"{side}_b_n"))
    if not n > 0:
        return "no runs"
    line = SimpleNamespace(**{k: getattr(r, f"{side}_{k}") for k in ("diff", "diff_low", "diff_high")})
    return f"{difference(line)} (n={int(n)})"


def _verdicts(r, side: str) -> str:
    return f"{getattr(r, f'{side}_verdict')} ({getattr(r, f'{side}_verdict_holm')})"


def longer_markdown(lines: pd.DataFrame, shorter_dir: str | Path, longer_dir: str | Path) -> str:
    short, long_ = (_epochs(lines, side) for side in SIDES) if len(lines) else ("the shorter training", "longer")
    counts = lines.outcome.value_counts()
    holm = int((lines.shorter_verdict_holm != "inconclusive").sum())
    table = pd.DataFrame({
        "claim (A vs B)": [f"{r.text} (A={r.a}, B={r.b})" for r in lines.itertuples()],
        f"shorter ({short}): A-B": [_side(r, "shorter") for r in lines.itertuples()],
        "verdict (Holm)": [_verdicts(r, "shorter") for r in lines.itertuples()],
        f"longer ({long_}): A-B": [_side(r, "longer") for r in lines.itertuples()],
        "verdict (Holm) ": ["—" if r.outcome == "no runs" else _verdicts(r, "longer") for r in lines.itertuples()],
        "the shorter verdict": lines.outcome})
    return "\n".join([
        "# Do the verdicts hold when the ablations train longer?", "",
        f"{regenerated_from(longer_dir)} and `python -m cpvt_lab.analyze longer_training "
        f"results_dir={Path(longer_dir).as_posix()} shorter={Path(shorter_dir).as_posix()}`; do not edit by hand. "
        f"Every claim decided at {short} (`{Path(shorter_dir).as_posix()}`, {len(lines)} decided at 95% alone, "
        f"{holm} of them under Holm) beside its verdict when the same ablations train for {long_} "
        f"(`{Path(longer_dir).as_posix()}`), judged as `claims.md` judges it: A-B in top-1 points with its 95% "
        "interval; under Holm, the claims with runs at the longer training are one family. A contradiction is "
        "a finding about our data set (the paper measured on ImageNet).", "",
        "At the longer training, of the verdicts decided at the shorter one: "
        + ", ".join(f"{counts.get(o, 0)} {o.replace('holds', 'hold')}" for o in OUTCOMES)
        + ". *Holds*: the same verdict, decisive under Holm or at 95% alone; *reversed*: the opposite verdict is "
        "decisive; *not decided*: the interval now straddles the claim's margin.", "",
        table.to_markdown(index=False) if len(lines) else "No claim was decided at the shorter training.", ""])


def write(folder, out_dir: str | Path, shorter: str = "") -> list[Path]:
    """``longer_training.md`` and ``.csv``: ``folder`` (an ``analysis.folder.ResultsFolder``) is the longer
    training, ``shorter`` the results folder of the shorter one."""
    from ..folder import ResultsFolder  # the folder imports the pages' analyses

    if not shorter or not (Path(shorter) / "runs.jsonl").is_file():
        raise ValueError(f"shorter: {shorter!r} is not a results folder holding runs.jsonl (give shorter=DIR: the "
                         "study whose verdicts the longer training checks)")
    lines = compare(ResultsFolder(shorter).claims, folder.claims)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines.to_csv(out / "longer_training.csv", index=False)
    (out / "longer_training.md").write_text(longer_markdown(lines, shorter, folder.results_dir))
    return [out / "longer_training.md", out / "longer_training.csv"]


ANALYSIS = ComputedAnalysis(
    "longer_training", "which verdicts of a shorter study hold when its ablations train longer (results_dir: the "
    "longer runs; shorter=DIR: the shorter study's results folder)", {"shorter": ""}, write, in_tables=False)
