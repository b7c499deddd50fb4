"""Helpers for the log tests: fixture paths and parsing text excerpts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nandoctor.log.parser import parse_log

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "log"


def parse_text_log(text: str | bytes, name: str = "excerpt.log"):
    data = text.encode() if isinstance(text, str) else text
    stream = io.BytesIO(data)
    stream.name = name
    return parse_log(stream)


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
