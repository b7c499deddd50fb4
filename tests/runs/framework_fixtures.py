"""The framework runs the real libraries wrote (tests/fixtures/frameworks), for every test here."""

from __future__ import annotations

from pathlib import Path

import pytest

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "frameworks"


def need(name: str) -> Path:
    """The run folder ``name``; the test is skipped when the framework lab has not written it."""
    p = FIX / name
    if not (p / "expected.json").is_file():
        pytest.skip(f"fixture {name} not generated")
    return p
