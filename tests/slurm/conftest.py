"""Fixtures of the sweep tests: the local one-node Slurm cluster and a tiny SciFact subset.

Nothing is skipped: `slurm/local_slurm.sh start` installs (as root, with apt) and starts
munged + slurmctld + slurmd; a machine where that fails fails the tests that need it.
"""
from __future__ import annotations

import subprocess

import pytest

from tests.helpers import REPO, write_subset


@pytest.fixture(scope="module")
def local_slurm():
    proc = subprocess.run([str(REPO / "slurm" / "local_slurm.sh"), "start"], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return True


@pytest.fixture(scope="module")
def tiny_beir(shared_data, tmp_path_factory):
    return write_subset(shared_data, "scifact", tmp_path_factory.mktemp("beir"), n_queries=4, n_extra_docs=20).parent
