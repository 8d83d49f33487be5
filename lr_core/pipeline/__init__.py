"""Orchestration: the one "baselines, fit, evaluate" pipeline that ``lr demo``, ``lr compare`` and
the sweep tasks share."""
