"""The validation split (choices read it, the test set is read once training ends), the per-image predictions a run
stores beside its row, and the data identity and curve split a row records."""
import numpy as np
import pytorch_lightning as pl
import pytest

from cpvt_lab import compose, predictions
from cpvt_lab.curves import instability
from cpvt_lab.data.batches import TensorBatches
from cpvt_lab.data.subsets import validation_split
from cpvt_lab.fingerprint import run_id
from cpvt_lab.train import run_experiment


def test_the_validation_split_is_stratified_disjoint_and_the_same_for_every_run():
    labels = np.repeat(np.arange(10), 50)
    held, rest = validation_split(labels, 100, seed=0)
    assert len(held) == 100 and len(rest) == 400 and not set(held) & set(rest)
    assert np.bincount(labels[held]).tolist() == [10] * 10
    again, _ = validation_split(labels, 100, seed=0)
    assert again.tolist() == held.tolist()  # drawn by its seed alone, never by the run's
    assert validation_split(labels, 100, seed=1)[0].tolist() != held.tolist()
    none_held, everything = validation_split(labels, None)
    assert len(none_held) == 0 and everything.tolist() == list(range(500))


def test_a_validation_split_enters_the_run_id_only_when_held_out(fast_overrides):
    plain = compose("peg", fast_overrides)
    assert run_id(plain) == run_id(compose("peg", fast_overrides + ["data.val_seed=3"]))  # no split: nothing held
    held = compose("peg", fast_overrides + ["data.val_split=20"])
    assert run_id(held) != run_id(plain) != run_id(compose("peg", fast_overrides + ["data.val_split=30"]))
    assert run_id(held) != run_id(compose("peg", fast_overrides + ["data.val_split=20", "data.val_seed=1"]))


class Phases(pl.Callback):
    """Which images every loader walked through, and whether training had ended by then."""

    def __init__(self, monkeypatch):
        self.datamodule, self.fit_ended, self.walked = None, False, []
        walk = TensorBatches.__iter__

        def recording(batches):
            self.walked.append((batches.images.data_ptr(), self.fit_ended))
            return walk(batches)

        monkeypatch.setattr(TensorBatches, "__iter__", recording)

    def on_fit_start(self, trainer, pl_module):
        self.datamodule = trainer.datamodule

    def on_fit_end(self, trainer, pl_module):
        self.fit_ended = True


@pytest.mark.parametrize("val_split", [20, None], ids=["with_split", "without"])
def test_a_run_with_a_validation_split_reads_the_test_set_only_once_it_has_finished_training(
        val_split, fast_overrides, monkeypatch):
    phases = Phases(monkeypatch)
    overrides = [o for o in fast_overrides if "limit_train_batches" not in o] + ["trainer.max_epochs=2"]
    row = run_experiment(compose("peg", overrides + [f"data.val_split={val_split}".replace("None", "null")]),
                         callbacks=[phases])
    data = phases.datamodule
    test = {images.data_ptr() for images, _ in data._test.values()}
    read_in_training = [ptr for ptr, ended in phases.walked if ptr in test and not ended]
    if val_split:
        assert row["curve_split"] == "validation" and len(row["curve"]["top1"]) == 2
        assert row["val_top1"] == row["curve"]["top1"][-1]  # what a sweep chooses by
        assert read_in_training == [], "the test set was read before training ended"
        assert any(ptr == data._val[0].data_ptr() for ptr, ended in phases.walked if not ended)
        assert data.num_val_images == 20 and data.num_train_images == 100  # 120 training images, 20 held out
    else:  # the curve reads the test set while training: the row says so, and no rule reads its top-1
        assert row["curve_split"] == "test" and read_in_training and row["val_top1"] is None
    assert {ptr for ptr, ended in phases.walked if ended} == test  # every test size, once training ended


def test_a_row_records_its_data_and_its_predictions_give_its_top1(fast_overrides, tiny_archive):
    from cpvt_lab.data.archive import sha256_of

    row = run_experiment(compose("learned", fast_overrides))
    identity = row["data_identity"]
    assert identity["sha256"] == sha256_of(tiny_archive) and identity["hashed"] == "archive"
    assert len(identity["classes"]) == 10 and "test: 60" in identity["split"]
    stored = predictions.load(row["config"]["results_dir"], row["run_id"])
    assert row["predictions"] == f"predictions/{row['run_id']}.json"
    assert sorted(stored.predicted) == [32, 48] and len(stored.labels) == row["test_images"] == 60
    assert {str(s): stored.top1(s) for s in stored.predicted} == pytest.approx(row["top1"], abs=1e-6)
    assert stored.data_sha256 == identity["sha256"]


def test_predictions_round_trip_as_digits_or_as_numbers_beyond_ten_classes(tmp_path):
    labels = np.array([0, 3, 9, 2])
    predictions.save(tmp_path, "a", labels, {24: np.array([0, 3, 1, 2])})
    assert '"0392"' in (tmp_path / "predictions" / "a.json").read_text()  # ten classes or fewer: digits
    got = predictions.load(tmp_path, "a")
    assert got.labels.tolist() == [0, 3, 9, 2] and got.correct(24).tolist() == [True, True, False, True]
    predictions.save(tmp_path, "b", np.array([0, 999]), {24: np.array([5, 999])})
    assert predictions.load(tmp_path, "b").correct(24).tolist() == [False, True]
    assert predictions.load(tmp_path, "missing") is None
    with pytest.raises(ValueError, match="3 predictions at 24 px for 4 test labels"):
        predictions.save(tmp_path, "c", labels, {24: np.array([0, 1, 2])})


def test_the_instability_rule_reads_a_curves_top1_only_on_a_validation_split():
    collapse = {"epoch": [1, 2, 3, 4], "train_loss": [2.0, 1.8, 1.7, 1.7], "top1": [30.0, 40.0, 41.0, 30.0]}
    assert "top-1 ends at 30.0%" in instability(collapse, split="validation")
    assert instability(collapse, split="test") == ""  # the test set judges the run: no rule may read it first
