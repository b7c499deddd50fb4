"""Shared test helpers: where the third-party corpus lives, and skipping when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NANDOCTOR_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"


def corpus_path(*parts: str) -> Path:
    """A path inside ../shared/corpus; the calling test is skipped when the corpus is absent."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus not available: {path}")
    return path


def corpus_files(*parts: str, pattern: str = "*") -> list[Path]:
    """Files matching a pattern in a corpus folder, for parametrising (empty list when absent)."""
    folder = CORPUS.joinpath(*parts)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(pattern))


def caffe_runs() -> list[Path]:
    """Every run folder of ../shared/corpus/caffe-runs (empty when the corpus is absent)."""
    folder = CORPUS / "caffe-runs"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / "expected.json").is_file())


@pytest.fixture
def corpus():
    if not CORPUS.is_dir():
        pytest.skip("corpus not available (../shared/corpus)")
    return CORPUS
