"""The success rows a reproduction added, as a printed table."""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

from ..results import finished_rows


def rows_since(results_dir: str, started: float) -> list[dict]:
    """This reproduction's success rows (finished since ``started``), oldest first."""
    return [r for r in finished_rows(results_dir)
            if datetime.fromisoformat(r["finished_at"]).timestamp() >= started - 1]


def format_rows(rows: Sequence[dict]) -> str:
    lines = [f"{'ablation':<16}{'epochs':>7}{'top1 (train size)':>19}{'images/s':>11}{'train s':>9}{'wall s':>8}"]
    for r in rows:
        first = str(r["train_size"])
        lines.append(f"{r['ablation']:<16}{r['epochs']:>7}{r['top1'].get(first, float('nan')):>19.2f}"
                     f"{r['images_per_second'] or 0:>11,.0f}{r['train_seconds']:>9.0f}{r['wall_seconds']:>8.0f}")
    return "\n".join(lines)
