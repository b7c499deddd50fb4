"""Fuzz: the debug analysis and the solverstate reader never crash, and keep their contracts."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from nandoctor.log.debug_analysis import JUMP, layer_matrix, localize
from nandoctor.log.symptoms import symptoms
from nandoctor.replay.locate import read_solverstate_header
from tests.log.conftest import parse_text_log
from tests.replay.debuglog import DebugLog

VALUES = st.one_of(
    st.sampled_from(["nan", "-nan", "inf", "-inf", "0", "1e-30", "3.40282e+38"]),
    st.floats(min_value=0, max_value=1e30, allow_nan=False).map(lambda v: f"{v:g}"),
)
LAYERS = st.sampled_from(["data", "conv1", "pool1", "fc", "loss", "loss2"])
RECORD = st.tuples(st.sampled_from(["fwd", "param", "back", "pdiff"]), LAYERS, LAYERS, VALUES)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(RECORD, max_size=12), max_size=8),
       st.dictionaries(st.sampled_from(["loss", "loss2"]), st.sampled_from([0.5, 1.0, 200.0])))  # fmt: skip
def test_random_debug_logs_keep_the_contract(iterations, weights):
    log = DebugLog(loss_weights=weights)
    for it, records in enumerate(iterations):
        for kind, layer, other, value in records:
            if kind == "fwd":
                log.fwd(layer, value)
            elif kind == "param":
                log.param(layer, 0, value)
            elif kind == "back":
                log.back(layer, other, value)
            else:
                log.pdiff(layer, 1, value)
        log.end(it)
    trace = parse_text_log(log.text())
    loc = localize(trace)
    if loc is not None:
        assert loc.phase in ("forward", "backward", "update")
        assert loc.layer is not None and loc.to_dict()["layer"] == loc.layer
        if loc.jump is not None:
            assert loc.jump.factor >= JUMP and math.isfinite(loc.jump.record.value)
        if loc.path and loc.phase == "backward":
            assert loc.path[0] == loc.layer
    for s in symptoms(trace):
        if s.kind.startswith("debug_"):
            assert s.data["phase"] in ("forward", "backward", "update") and s.data["layer"] == s.culprit
    for seg in trace.segments:
        for direction in ("forward", "backward", "param"):
            names, its, cells = layer_matrix(seg, direction)
            assert len(cells) == len(names) and all(len(row) == len(its) for row in cells)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_solverstate_header_of_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("ss") / "x_iter_1.solverstate"
    path.write_bytes(data)
    it, learned = read_solverstate_header(path)
    assert it is None or isinstance(it, int)
    assert learned is None or isinstance(learned, str)
