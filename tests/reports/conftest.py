"""Fixtures for the reports tests (helpers in tests/reports/ledger.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports.ledger import build_ledger


@pytest.fixture
def ledger(tmp_path) -> Path:
    return build_ledger(tmp_path / "runs")
