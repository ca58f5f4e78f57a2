"""torch's OpenMP threads sleep while they wait (OMP_WAIT_POLICY=PASSIVE): set by the package before torch loads,
and by the Makefile, a user's own value kept either way (docs/cpu_study.md measures why)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cpvt_lab.provenance import REPO_ROOT

SAYS = "import cpvt_lab, os, sys; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"


@pytest.mark.parametrize("given, policy", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_package_sets_the_policy_before_torch_loads_and_keeps_the_users(given, policy):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update({"OMP_WAIT_POLICY": given} if given else {})
    env["PYTHONPATH"] = str(REPO_ROOT)
    # the policy is read once, when torch loads its OpenMP runtime: it must be in the environment by then
    out = subprocess.run([sys.executable, "-c", SAYS], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [policy, "True"]


def test_the_package_sets_it_before_its_first_import():
    source = (REPO_ROOT / "cpvt_lab" / "__init__.py").read_text()
    assert source.index('os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")') < source.index("from .")


def test_the_makefile_exports_it_unless_the_user_set_it():
    assert "export OMP_WAIT_POLICY ?= PASSIVE" in (REPO_ROOT / "Makefile").read_text()
