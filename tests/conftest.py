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


# ------------------------------------------------------------------ a real Caffe (skipped when absent)
CAFFE_HOME = Path(os.environ.get("NANDOCTOR_CAFFE_HOME", Path.home() / ".cache" / "nandoctor" / "caffe"))


def find_caffe_bin() -> Path | None:
    """$CAFFE_BIN, else `caffe` on PATH, else the build cache's bin/caffe (None when there is none)."""
    import shutil

    for cand in (os.environ.get("CAFFE_BIN"), shutil.which("caffe"), str(CAFFE_HOME / "bin" / "caffe")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return Path(os.path.abspath(cand))
    return None


def caffe_environment(caffe: Path) -> dict[str, str]:
    """The environment env.sh of the Caffe build sets up (caffe on PATH, CAFFE_BIN, CAFFE_PYTHON, pycaffe on
    PYTHONPATH, glog to stderr), with this repository's src first so child processes run this nandoctor."""
    env = dict(os.environ)
    pycaffe = os.environ.get("CAFFE_PYTHON") or next(
        (str(p) for p in (caffe.parent.parent / "src" / "python", CAFFE_HOME / "src" / "python") if p.is_dir()), ""
    )
    env["PATH"] = os.pathsep.join([str(caffe.parent), env.get("PATH", "")])
    env["CAFFE_BIN"] = str(caffe)
    if pycaffe:
        env["CAFFE_PYTHON"] = pycaffe
    paths = [str(REPO / "src"), pycaffe, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(filter(None, paths)))
    env["GLOG_logtostderr"] = "1"
    return env


@pytest.fixture(scope="session")
def caffe_bin() -> Path:
    """The real Caffe binary; the test is skipped when none is installed."""
    found = find_caffe_bin()
    if found is None:
        pytest.skip("no Caffe (set $CAFFE_BIN, put caffe on PATH, or run ../shared/tools/caffe/build.sh)")
    return found


@pytest.fixture(scope="session")
def caffe_env(caffe_bin) -> dict[str, str]:
    """An environment for running that Caffe (and pycaffe) as a child process."""
    return caffe_environment(caffe_bin)
