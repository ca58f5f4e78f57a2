"""What a run says and where it logs: one line per epoch in percent and its row, no advertisement, and the logger
chosen like any config group (a logger whose package is missing refused before any work)."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from hydra.utils import get_class

from cpvt_lab import compose, validation
from cpvt_lab.fingerprint import run_id
from cpvt_lab.provenance import REPO_ROOT
from cpvt_lab.run import main as run_main

LOGGERS = sorted(p.stem for p in (REPO_ROOT / "cpvt_lab" / "conf" / "logger").glob("*.yaml"))


def test_a_run_prints_its_epochs_in_percent_and_its_row_and_logs_to_csv(fast_overrides, tmp_path):
    done = subprocess.run([sys.executable, "-m", "cpvt_lab.run", "ablation=peg", *fast_overrides], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout + done.stderr
    assert "epoch 1/1, loss " in done.stdout and "top1@32 " in done.stdout and "%, " in done.stdout
    assert "done: peg seed=0" in done.stdout
    assert "💡" not in said and "litlogger" not in said and "Epoch 0" not in said and "val/top1" not in said
    assert list((tmp_path / "outputs" / "runs").glob("peg-*/logs/metrics.csv"))


@pytest.mark.parametrize("logger", LOGGERS)
def test_every_logger_is_a_lightning_logger_that_names_its_package_and_leaves_the_run_id_alone(logger):
    cfg = compose("peg", ["scale=smoke", f"logger={logger}"])
    assert get_class(cfg.logger._target_).__module__.startswith("pytorch_lightning.loggers")
    assert bool(cfg.logger.requires) == (logger != "csv")  # Lightning's own CSV logger needs nothing more
    assert run_id(cfg) == run_id(compose("peg", ["scale=smoke"]))  # where metrics go changes no result
    assert set(LOGGERS) >= {"csv", "tensorboard", "wandb", "mlflow"}


@pytest.mark.parametrize("logger", [name for name in LOGGERS if name != "csv"])
def test_a_logger_whose_package_is_missing_is_refused_before_any_work(logger, tmp_path, monkeypatch, capsys):
    required = set(compose("peg", ["scale=smoke", f"logger={logger}"]).logger.requires)
    real = importlib.util.find_spec
    monkeypatch.setattr(validation.importlib.util, "find_spec", lambda name, *a: None if name in required
                        else real(name, *a))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["cpvt_lab/run.py", f"logger={logger}"])
    with pytest.raises(SystemExit) as exit_info:
        run_main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and err.startswith("error: logger: ")
    assert sorted(required)[0] in err and list(tmp_path.iterdir()) == []
