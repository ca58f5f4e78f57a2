"""Every command speaks the one command-line style: ``--help`` prints its usage, a bad word is one line and exit 2."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

# (module, the words before a bad one: grid and sweep take a grid NAME first)
COMMANDS = [("run", []), ("grid", ["table1"]), ("sweep", ["table1"]), ("bench", []), ("compiled", []),
            ("study", []), ("tables", []), ("analyze", ["claims"])]


PACKAGES = {"bench": "command", "compiled": "agreement", "study": "command"}  # the module a package runs


def command_main(command: str):
    module = f"cpvt_lab.{command}" + (f".{PACKAGES[command]}" if command in PACKAGES else "")
    return importlib.import_module(module).main


@pytest.mark.parametrize("command", [c for c, _ in COMMANDS])
def test_help_prints_the_usage_and_exits_0(command, capsys):
    assert command_main(command)(["--help"]) == 0
    out = capsys.readouterr().out
    assert f"python -m cpvt_lab.{command}" in out and "KEY=VALUE" in out


# each package run as ``python -m`` runs it (runpy, as -m does), in one interpreter: torch is imported once
RUN_AS_MAIN = """
import runpy, sys
for command in sys.argv[1:]:
    sys.argv = [command, "--help"]
    try:
        runpy.run_module(f"cpvt_lab.{command}", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        print(f"== {command} exited {done.code}", flush=True)
"""


def test_the_packages_run_as_python_dash_m():
    out = subprocess.run([sys.executable, "-c", RUN_AS_MAIN, *PACKAGES], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    rest = out.stdout
    for command in PACKAGES:
        usage, _, rest = rest.partition(f"== {command} exited ")
        assert rest.startswith("0\n") and f"python -m cpvt_lab.{command}" in usage, out.stdout[-2000:]


@pytest.mark.parametrize("command, before", COMMANDS)
@pytest.mark.parametrize("bad", ["oops", "--steps"])
def test_a_bad_word_is_one_error_line_and_exit_2(command, before, bad, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert command_main(command)([*before, bad]) == 2
    out = capsys.readouterr()
    assert out.err.splitlines() == [f"error: {bad}: " + out.err.split(": ", 2)[2].rstrip("\n")] and out.out == ""
    assert list(tmp_path.iterdir()) == []  # refused before any work


@pytest.mark.parametrize("command", ["grid", "sweep"])
def test_grid_and_sweep_want_a_grid_name_first(command, capsys):
    assert command_main(command)(["seeds=[0]"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: grid: name one as the first word") and "table1" in err and err.count("\n") == 1


def test_every_command_names_its_folders_and_lists_alike():
    """One name for one thing in every command: results_dir, tables_dir, ablations=[...]; the old names only as
    aliases (cli.ALIASES), never as a command's own option."""
    from cpvt_lab import analyze, grid, sweep, tables
    from cpvt_lab.bench.command import options as bench_options
    from cpvt_lab.cli import ALIASES
    from cpvt_lab.compiled import agreement
    from cpvt_lab.study import command as study

    own = [grid.OPTIONS, sweep.OPTIONS, study.OPTIONS, tables.OPTIONS, agreement.OPTIONS, bench_options(False),
           *analyze.ANALYSES.values()]
    keys = {key for options in own for key in options}
    assert not keys & set(ALIASES) and not keys & {"output_dir", "out_dir", "out", "results", "ablation"}
    assert {key for key in keys if key.endswith("_dir")} <= {"results_dir", "tables_dir"}
