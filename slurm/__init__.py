"""Sweeps on Slurm (or locally): the spec language, submit/requeue and the per-run task.
``local_slurm.sh`` starts a one-node cluster for the tests."""
