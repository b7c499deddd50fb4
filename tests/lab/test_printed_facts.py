"""What a real Caffe prints, as the lab's runs recorded it, against what nandoctor reads.

Each lab log is real Caffe output (tests/lab/test_real_caffe.py reruns some and compares), and
``expected.json`` was read from it by the lab's own regular expressions, which share no code with
nandoctor. These tests pin every printed fact the rules rely on: where the first non-finite value
appears (a display, a TEST pass or the lr line), how Caffe spells it (``nan``, ``-nan``, ``inf``),
what debug_info prints for every blob, what gradient clipping prints and on which iteration, and
which CHECK aborts a run with what message.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from functools import cache
from pathlib import Path

import pytest
from tools.lab import runner

from nandoctor.log.parser import parse_log
from nandoctor.replay.locate import failure_in

RUNS = sorted(p for p in runner.RUNS.iterdir() if p.is_dir())
DEBUG_VALUE = re.compile(
    rb"\] +\[(?:Forward|Backward)\] (?:Layer \S+, (?:top|bottom|param) blob \S+ (?:data|diff)): (\S+)"
)
CLIP = re.compile(rb"Gradient clipping: scaling down gradients \(L2 norm (\S+) > (\S+)\) by scale factor (\S+)")
LR_LINE = re.compile(rb"\] Iteration (\d+), lr = ")


@cache
def _log(run: Path) -> bytes:
    return gzip.decompress((run / "train.log.gz").read_bytes())


@cache
def _trace(run: Path, tmp: Path):
    path = tmp / f"{run.name}.log"
    path.write_bytes(_log(run))
    return parse_log(path)


def _expected(run: Path) -> dict:
    return json.loads((run / "expected.json").read_text())


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lablogs")
    return lambda run: _trace(run, tmp)


def test_the_first_nonfinite_iteration_is_where_caffe_printed_it(traces):
    for run in RUNS:
        e = _expected(run)
        printed = [e[k] for k in ("first_nan_iteration", "first_nonfinite_test_iteration",
                                  "first_nonfinite_lr_iteration") if e[k] is not None]  # fmt: skip
        assert failure_in(traces(run)).first_nonfinite == min(printed, default=None), run.name


def test_the_nonfinite_loss_is_read_as_caffe_spelled_it(traces):
    spellings = set()
    for run in RUNS:
        e = _expected(run)
        if e["first_nan_iteration"] is None:
            continue
        point = next(p for p in traces(run).train if p.iteration == e["first_nan_iteration"])
        assert point.loss_text == e["first_nonfinite_loss_value"] and not math.isfinite(point.loss), run.name
        spellings.add(point.loss_text)
    assert {"nan", "-nan", "inf"} <= spellings  # all three occur in real runs and each is read as non-finite


def test_debug_info_prints_every_value_and_each_is_read(traces):
    runs = [r for r in RUNS if b"debug_info: true" in _log(r)]
    assert len(runs) >= 10
    spellings = set()
    for run in runs:
        printed = DEBUG_VALUE.findall(_log(run))
        tables = [seg.debug for seg in traces(run).segments]
        assert sum(map(len, tables)) == len(printed), run.name
        values = [v for t in tables for v in t.value]
        assert sum(not math.isfinite(v) for v in values) == sum(
            not math.isfinite(float(t.decode())) for t in printed
        ), run.name
        spellings |= {t.decode() for t in printed if not math.isfinite(float(t.decode()))}
    assert {"nan", "-nan", "inf"} <= spellings


def test_gradient_clipping_prints_norm_threshold_and_factor_on_its_iteration(traces):
    runs = [r for r in RUNS if CLIP.search(_log(r))]
    assert len(runs) >= 5
    norms = [float(n) for r in runs for n, _, _ in CLIP.findall(_log(r))]
    # a NaN norm fails Caffe's `norm > threshold`, so it never prints; an inf norm prints factor 0
    assert not any(math.isnan(n) for n in norms) and math.inf in norms
    for run in runs:
        text = _log(run)
        printed = CLIP.findall(text)
        threshold = float(re.search(rb"clip_gradients: (\S+)", (run / "solver.prototxt").read_bytes()).group(1))
        for norm, thr, factor in printed:
            norm, thr, factor = float(norm), float(thr), float(factor)
            # Caffe scales only when the norm exceeds the threshold, by threshold / norm (float32, 6 digits)
            assert thr == threshold and norm > thr and factor == pytest.approx(thr / norm, rel=2e-5), run.name
        clips = [c for seg in traces(run).segments for c in seg.clips]
        assert [(c.norm, c.threshold, c.factor) for c in clips] == [tuple(map(float, p)) for p in printed], run.name
        # with display 1 the clip line follows its iteration's lr line (ApplyUpdate prints the rate, then clips)
        if re.search(rb"display: 1\n", (run / "solver.prototxt").read_bytes()):
            lines = text.splitlines()
            for c in clips:
                before = next(m for m in map(LR_LINE.search, reversed(lines[: c.line - 1])) if m)
                assert c.iteration == int(before.group(1)), run.name


def test_every_abort_is_read_with_caffes_message(traces):
    aborted = [r for r in RUNS if _expected(r)["outcome"] == "abort"]
    assert len(aborted) >= 5
    for run in aborted:
        e = _expected(run)
        crashes = [c for seg in traces(run).segments for c in seg.crashes]
        assert any(e["abort_message"] in c.message or c.message in e["abort_message"] for c in crashes), run.name
        assert e["caffe_exit_code"] != 0
