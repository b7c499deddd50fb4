"""Whatever a user pastes, ``diagnose`` answers with a well-formed diagnosis, never a traceback."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.cli.main import main

VALUES = st.sampled_from(["nan", "-nan", "inf", "-inf", "1.#QNAN", "0", "2.30258", "1e+38", "-3.5", "87.3365", "x"])
ITER = st.integers(min_value=-5, max_value=10_000)
LINE = st.one_of(
    st.builds("Iteration {}, loss = {}".format, ITER, VALUES),
    st.builds("Iteration {}, lr = {}".format, ITER, VALUES),
    st.builds(
        "    Train net output #{}: {} = {} (* {} = {} loss)".format,
        st.integers(0, 3),
        st.sampled_from(["loss", "loss_bbox"]),
        VALUES,
        VALUES,
        VALUES,
    ),
    st.builds("Iteration {}, Testing net (#0)".format, ITER),
    st.builds("    Test net output #0: loss = {}".format, VALUES),
    st.builds(
        "[Forward] Layer {}, top blob {} data: {}".format,
        st.sampled_from(["data", "pool1", "ip1"]),
        st.just("b"),
        VALUES,
    ),
    st.just("F1123 10:00:00.000000  1 sgd_solver.cpp:33] Check failed: this->param_.stepsize() > 0 (0 vs. 0)"),
    st.just("Initializing solver from parameters: "),
    st.just('net: "train_val.prototxt"'),
    st.just('lr_policy: "poly"'),
    st.text(max_size=40),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINE, max_size=40))
def test_any_excerpt_gets_a_well_formed_diagnosis(tmp_path_factory, capsys, lines):
    path = tmp_path_factory.mktemp("fuzz") / "pasted.log"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")
    capsys.readouterr()
    code = main(["diagnose", "--log", str(path), "--format", "json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("nandoctor: ")
        return
    report = json.loads(out)
    assert code == (0 if report["verdict"] == "healthy" else 1)
    assert report["verdict"] in ("nan", "diverging", "will_fail", "healthy", "inconclusive")
    if report["causes"]:
        # probabilities of being right: they never add up past 1 (a lone candidate leaves the rest
        # to what nandoctor did not see) and the first is the largest
        confs = [c["confidence"] for c in report["causes"]]
        assert all(0.0 <= c <= 1.0 for c in confs)
        assert sum(confs) <= 1.0 + 0.01
        assert confs[0] == max(confs)
