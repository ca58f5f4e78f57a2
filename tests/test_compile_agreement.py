"""python -m cpvt_lab.compiled: compiled variants trained beside eager, losses side by side, resumable."""
from __future__ import annotations

import json

import pytest

from cpvt_lab.compiled import agreement
from cpvt_lab.cli import UsageError

pytestmark = pytest.mark.usefixtures("single_thread", "fresh_dynamo")


@pytest.mark.slow  # a subprocess or a compile: kept out of CI's ten minutes
def test_a_faithful_variant_trains_the_same_losses_as_eager_and_a_second_call_measures_nothing(
        fast_overrides, tmp_path, capsys):
    overrides = [o for o in fast_overrides if not o.startswith(("+trainer.limit_train_batches", "results_dir"))]
    overrides.append("data.batch_size=40")  # results_dir= is this command's own: where its records go
    argv = ["ablations=[peg_0to5]", "variants=[aot_eager]", "steps=3", f"results_dir={tmp_path / 'agree'}", *overrides]
    assert agreement.main(argv) == 0
    records = [json.loads(line) for line in (tmp_path / "agree" / "agreement.jsonl").read_text().splitlines()]
    assert [r["variant"] for r in records] == ["eager", "aot_eager"]
    eager, compiled = records
    assert len(eager["losses"]) == 3 and compiled["losses"] == pytest.approx(eager["losses"], abs=1e-5)
    assert compiled["compile_check"]["passed"] and eager["compile_check"] is None
    table = (tmp_path / "agree" / "agreement.md").read_text()
    assert "| peg_0to5 | aot_eager | pass" in table and "python -m cpvt_lab.compiled" in table
    assert all(r["versions"] and r["device"] and r["command"] for r in records)  # the provenance every record has
    capsys.readouterr()
    assert agreement.main(argv) == 0
    assert capsys.readouterr().out.count("already measured") == 2


@pytest.mark.parametrize("argv, key", [(["variants=nope"], "variants"), (["steps=0"], "steps"), (["oops"], "oops"),
                                       (["steps=many"], "steps")])
def test_bad_arguments_are_refused_with_the_key(argv, key, capsys):
    assert agreement.main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error: {key}:")
    with pytest.raises(UsageError):
        agreement.parse(argv, cuda=False)


def test_the_gap_is_the_largest_difference_of_the_smoothed_curves():
    assert agreement.gap([1.0] * 20, [1.0] * 20) == 0
    assert agreement.gap([2.0] * 20, [1.0] * 20, window=5) == pytest.approx(1.0)
    assert agreement.gap([1.0] * 10 + [3.0] * 10, [1.0] * 20, window=10) == pytest.approx(2.0)


def test_help_lists_every_variant(capsys):
    assert agreement.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in agreement.VARIANTS)
