"""The parser on minimal excerpts of every log variant (written for these tests)."""

from __future__ import annotations

import gzip
import math

import pytest

from nandoctor.core.types import InputError
from nandoctor.log.parser import parse_log
from nandoctor.log.values import parse_value
from tests.log.conftest import FIXTURES, parse_text_log

PREFIX_YEAR = "I20261123 18:43:18.487260 12700 solver.cpp:239] "
PREFIX_OLD = "I1123 18:43:18.487260  3123 solver.cpp:218] "


def test_glog_year_run_full_trace():
    t = parse_log(FIXTURES / "glog_year.log")
    assert len(t.segments) == 1
    seg = t.segments[0]
    assert [p.iteration for p in seg.train] == [0, 10, 20, 30, 40]
    p0 = seg.train[0]
    assert (p0.loss, p0.line, p0.seconds, p0.lr, p0.lr_line) == (2.5, 71, 0.01, 0.1, 73)
    out = p0.outputs[0]
    assert (out.name, out.value, out.weight, out.contribution, out.line) == ("loss", 2.5, 1.0, 2.5, 72)
    assert seg.train[3].loss_text == "-nan" and math.isnan(seg.train[3].loss)
    assert seg.train[4].final and seg.train[4].seconds is None
    (test,) = seg.tests
    assert (test.iteration, test.net_index, test.line) == (20, 0, 78)
    assert math.isnan(test.loss) and test.loss_line == 79
    assert [(o.name, o.text) for o in test.outputs] == [("accuracy", "1"), ("loss", "-nan")]
    assert [(s.kind, s.iteration) for s in seg.snapshots] == [("model", 30), ("solverstate", 30)]
    assert seg.info["solving"] == "Tiny" and seg.info["lr_policy"] == "fixed"
    assert seg.info["data_restarts"] == 1 and seg.info["optimization_done_line"] == 91
    assert [(ly.name, ly.top_shapes, ly.loss_weights) for ly in seg.layers] == [
        ("ip", [((8, 2), 16)], []),
        ("loss", [((), 1)], [1.0]),
    ]


def test_dumps_become_documents_with_log_positions():
    t = parse_log(FIXTURES / "glog_year.log")
    solver = t.solver
    assert solver.header_line == 4 and solver.start_line == 5
    assert solver.root.get("base_lr") == 0.1
    field = solver.root.first("lr_policy")
    assert solver.log_line(field.name_pos) == 10
    train, test = t.nets
    assert (train.role, train.source) == ("train", "tiny.prototxt")
    assert (test.role, test.test_index) == ("test", 0)
    assert [ly.get("name") for ly in train.root.messages("layer")] == ["data", "ip", "loss"]


def test_reconstruction_matches_the_files():
    from nandoctor.log.reconstruct import compare_net, compare_solver

    t = parse_log(FIXTURES / "glog_year.log")
    assert compare_solver(t.solver, FIXTURES / "tiny_solver.prototxt") == []
    assert [compare_net(n, FIXTURES / "tiny.prototxt") for n in t.nets] == [[], []]


def test_reconstruction_reports_a_changed_value(tmp_path):
    from nandoctor.log.reconstruct import compare_net, compare_solver

    t = parse_log(FIXTURES / "glog_year.log")
    other = tmp_path / "solver.prototxt"
    other.write_text((FIXTURES / "tiny_solver.prototxt").read_text().replace("base_lr: 0.1", "base_lr: 0.2"))
    assert compare_solver(t.solver, other) == ["base_lr: file 0.2 vs log 0.1"]
    net = tmp_path / "tiny.prototxt"
    net.write_text((FIXTURES / "tiny.prototxt").read_text().replace("num_output: 2", "num_output: 3"))
    assert compare_net(t.nets[0], net) == ["layer[1].inner_product_param.num_output: file 3 vs log 2"]


@pytest.mark.parametrize("prefix", [PREFIX_YEAR, PREFIX_OLD, "", "    [0] ", "> "])
def test_iteration_line_with_any_prefix(prefix):
    t = parse_text_log(f"{prefix}Iteration 7 (1.5 iter/s, 2s/3 iters), loss = 0.5\n{prefix}Iteration 7, lr = 0.01\n")
    (p,) = t.train
    assert (p.iteration, p.loss, p.seconds, p.lr) == (7, 0.5, 2.0, 0.01)


def test_old_caffe_format():
    t = parse_log(FIXTURES / "old_caffe.log")
    seg = t.segments[0]
    assert [(p.iteration, p.loss, p.lr) for p in seg.train] == [(100, 2.1, 0.01), (200, 1.9, 0.01)]
    assert [(o.name, o.value) for o in seg.tests[0].outputs] == [("score0", 0.1), ("score1", 2.3)]
    assert [s.path for s in seg.snapshots] == ["lenet_iter_200", "lenet_iter_200.solverstate"]


def test_nvcaffe_lines_and_device_tags():
    t = parse_log(FIXTURES / "nvcaffe.log")
    seg = t.segments[0]
    assert [(p.iteration, p.loss_text, p.seconds) for p in seg.train] == [
        (2, "5.08", 3.89),
        (50, "3.22", 21.3),
        (100, "inf", 20.0),
    ]
    assert seg.lr[1].extras == {"m": 0.9, "wd": 0.0004, "gs": 1.0, "lrm": 0.002}
    assert len(t.segments) == 1  # rank 1 repeating iteration 50 is not a new run


def test_pasted_markdown_with_quotes_and_suffixes():
    t = parse_log(FIXTURES / "pasted_issue.md")
    first, second = t.segments
    assert [(p.iteration, p.loss_text) for p in first.train] == [(100, "2.30"), (200, "5.06"), (300, "1.#QNAN")]
    assert math.isnan(first.train[2].loss)
    assert second.solver.text == 'base_lr: 0.01\nlr_policy: "fixed"\n'
    assert second.solver.root.get("lr_policy") == "fixed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nan", "nan"), ("-nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("1.#QNAN", "nan"),
        ("-1.#IND", "nan"), ("1.#INF", "inf"), ("-1.#INF", "-inf"), ("nan(ind)", "nan"), ("-nan(ind)", "nan"),
        ("1e-05", "1e-05"), ("3.40282e+38", "3.40282e+38"), ("87.3365", "87.3365"),
    ],
)  # fmt: skip
def test_every_spelling_of_values(text, expected):
    v = parse_value(text)
    assert str(v) == str(float(expected))
    t = parse_text_log(f"{PREFIX_YEAR}Iteration 3 (1 iter/s, 1s/1 iters), loss = {text}\n")
    assert str(t.train[0].loss) == str(float(expected))


def test_garbage_value_is_not_a_number():
    assert parse_value("abc") is None
    t = parse_text_log(f"{PREFIX_YEAR}Iteration 3, loss = what\n")
    assert t.train[0].loss is None


def test_crlf_gives_the_same_trace(tmp_path):
    raw = (FIXTURES / "glog_year.log").read_bytes()
    crlf = tmp_path / "crlf.log"
    crlf.write_bytes(raw.replace(b"\n", b"\r\n"))
    a, b = parse_log(FIXTURES / "glog_year.log"), parse_log(crlf)
    assert [(p.iteration, p.loss_text, p.line) for p in a.train] == [
        (p.iteration, p.loss_text, p.line) for p in b.train
    ]
    assert b.solver.root.get("lr_policy") == "fixed"
    assert [o.text for o in b.tests[0].outputs] == ["1", "-nan"]


def test_gzip_is_detected_by_magic(tmp_path):
    gz = tmp_path / "train.log.bin"
    gz.write_bytes(gzip.compress((FIXTURES / "glog_year.log").read_bytes()))
    t = parse_log(gz)
    assert t.stats["gzip"] == 1
    assert [p.iteration for p in t.train] == [0, 10, 20, 30, 40]


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    data = gzip.compress((FIXTURES / "glog_year.log").read_bytes() * 50)
    gz = tmp_path / "cut.log.gz"
    gz.write_bytes(data[: len(data) // 2])
    t = parse_log(gz)
    assert t.stats["read_error"] == 1
    assert t.train


def test_concatenated_runs_and_resume_are_segments():
    a = f"{PREFIX_YEAR}Iteration 0 (1 iter/s, 1s/10 iters), loss = 2\n{PREFIX_YEAR}Iteration 10 (1 iter/s, 1s/10 iters), loss = 1\n"
    resume = "I20261123 18:43:18.000000 12700 caffe.cpp:235] Resuming from snap_iter_5.solverstate\n"
    b = f"{PREFIX_YEAR}Iteration 5 (1 iter/s, 1s/10 iters), loss = 3\n"
    t = parse_text_log(a + a + resume + b)
    assert [[p.iteration for p in s.train] for s in t.segments] == [[0, 10], [0, 10], [5]]
    assert t.segments[2].info["resumed_from"] == "snap_iter_5.solverstate"
    assert t.segments[1].start_line == 3 and t.segments[0].end_line == 2


def test_interleaved_other_output_is_ignored_and_counted():
    text = (
        f"{PREFIX_YEAR}Iteration 0 (1 iter/s, 1s/10 iters), loss = 2\n"
        "epoch 1: my python script prints things\n"
        "\x00\x01\x02 binary \xff\xfe junk\n"
        f"{PREFIX_YEAR}Iteration 10 (1 iter/s, 1s/10 iters), loss = 1\n"
    )
    t = parse_text_log(text.encode("latin-1"))
    assert [p.iteration for p in t.train] == [0, 10]
    assert t.stats["unparsed_lines"] == 2 and t.stats["lines"] == 4


def test_crash_lines():
    t = parse_log(FIXTURES / "crash_stepsize.log")
    assert [(c.kind, c.line) for c in t.crashes] == [("check_failed", 4), ("aborted", 7), ("signal", 8)]
    assert t.crashes[0].message == "Check failed: this->param_.stepsize() > 0 (0 vs. 0)"


def test_glibc_and_shell_crash_lines():
    text = "double free or corruption (out)\nFloating point exception (core dumped)\nF1123 10:00:00.1 1 solver.cpp:1] Unknown thing\n"
    t = parse_text_log(f"{PREFIX_YEAR}Iteration 0, loss = 1\n" + text)
    assert [c.kind for c in t.crashes] == ["double_free", "signal", "fatal"]


def test_debug_info_values_iterations_and_phases():
    t = parse_log(FIXTURES / "debug_info.log")
    recs = list(t.segments[0].debug)
    test_recs = [r for r in recs if r.phase == "test"]
    assert [(r.layer, r.iteration) for r in test_recs] == [("data", 0), ("pool1", 0)]
    it1 = [r for r in recs if r.phase == "train" and r.iteration == 1]
    assert [(r.direction, r.role, r.layer, r.blob, r.what) for r in it1][-2:] == [
        ("backward", "bottom", "loss", "conv1", "diff"),
        ("backward", "param", "conv1", "0", "diff"),
    ]
    assert math.isinf(it1[-2].value) and math.isnan(it1[-1].value)
    update = [r for r in recs if r.direction == "update"]
    assert [(r.blob, r.what, r.value) for r in update] == [
        ("0", "data", 0.1),
        ("0", "diff", 0.0001),
        ("1", "diff", 0.0002),
    ]
    assert recs[-1].role == "input" and recs[-1].value == 0.5
    assert t.segments[0].debug.summaries == [(11, 0, 10.0, 0.1, 1.0, 0.01)]
    first = t.segments[0].debug.first_nonfinite()
    assert (first.layer, first.iteration, first.direction) == ("loss", 1, "backward")


def test_gradient_clipping_and_multistep_lines():
    text = (
        f"{PREFIX_YEAR}Iteration 10 (1 iter/s, 1s/10 iters), loss = 2\n"
        "I20261123 18:43:18.000001 12700 sgd_solver.cpp:50] MultiStep Status: Iteration 10, step = 1\n"
        "I20261123 18:43:18.000002 12700 sgd_solver.cpp:112] Iteration 10, lr = 0.001\n"
        "I20261123 18:43:18.000003 12700 sgd_solver.cpp:99] Gradient clipping: scaling down gradients "
        "(L2 norm 52.3 > 35) by scale factor 0.669\n"
    )
    seg = parse_text_log(text).segments[0]
    assert [(m.iteration, m.step) for m in seg.multistep] == [(10, 1)]
    (c,) = seg.clips
    assert (c.iteration, c.norm, c.threshold, c.factor, c.line) == (10, 52.3, 35.0, 0.669, 4)


def test_missing_and_directory_inputs_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        parse_log(tmp_path / "nope.log")
    with pytest.raises(InputError, match="directory"):
        parse_log(tmp_path)


def test_text_stream_and_empty_input():
    import io

    t = parse_log(io.StringIO(f"{PREFIX_YEAR}Iteration 1, loss = 2\n"))
    assert t.train[0].loss == 2.0
    empty = parse_text_log(b"")
    assert empty.empty and empty.stats["lines"] == 0


def test_overlong_line_is_dropped_with_bounded_memory(monkeypatch):
    import nandoctor.log.chunks as C
    import nandoctor.log.scan as S

    monkeypatch.setattr(C, "BLOCK", 1024)
    monkeypatch.setattr(S, "MAX_LINE", 4096)
    text = f"{PREFIX_YEAR}Iteration 1, loss = 2\n" + "x" * 50_000 + "\n" + f"{PREFIX_YEAR}Iteration 2, loss = 3\n"
    t = parse_text_log(text)
    assert [(p.iteration, p.line) for p in t.train] == [(1, 1), (2, 3)]
    assert t.stats["long_lines"] == 1


def test_small_blocks_give_the_same_trace(monkeypatch):
    """Chunk boundaries (inside dumps, inside lines) must not change anything."""
    import nandoctor.log.chunks as C

    whole = parse_log(FIXTURES / "glog_year.log")
    monkeypatch.setattr(C, "BLOCK", 97)
    small = parse_log(FIXTURES / "glog_year.log")
    assert [(p.iteration, p.loss_text, p.line, p.lr) for p in small.train] == [
        (p.iteration, p.loss_text, p.line, p.lr) for p in whole.train
    ]
    assert small.solver.text == whole.solver.text
    assert [n.text for n in small.nets] == [n.text for n in whole.nets]
    assert small.stats["lines"] == whole.stats["lines"]


def _summary(trace):
    return (
        [(s.start_line, s.end_line) for s in trace.segments],
        [
            (p.iteration, p.loss_text, p.line, repr(p.lr), [(o.name, o.text, o.line) for o in p.outputs])
            for p in trace.train
        ],
        [(t.iteration, t.line, [o.text for o in t.outputs]) for t in trace.tests],
        [(c.kind, c.line) for c in trace.crashes],
        [[(*r[:-1], repr(r.value)) for r in s.debug] for s in trace.segments],
        [(s.solver.text if s.solver else None, [n.text for n in s.nets]) for s in trace.segments],
        trace.stats["lines"],
    )


def test_parallel_scan_gives_the_same_trace(tmp_path, monkeypatch):
    """Worker processes scan chunks; the trace must not depend on how many there are."""
    import nandoctor.log.chunks as C

    names = ["glog_year.log", "debug_info.log", "crash_stepsize.log", "old_caffe.log", "nvcaffe.log"]
    big = tmp_path / "many.log"
    big.write_bytes(b"".join((FIXTURES / n).read_bytes() for n in names) * 20)
    monkeypatch.setattr(C, "BLOCK", 4096)
    one = parse_log(big, workers=1)
    two = parse_log(big, workers=2)
    assert _summary(one) == _summary(two)
    assert len(one.segments) > 20 and sum(len(s.debug) for s in one.segments) == 20 * 18


def test_unreadable_debug_value_is_nan_and_columns_stay_aligned():
    lines = [
        f"{PREFIX_OLD}    [Forward] Layer a, top blob a data: 0.5",
        f"{PREFIX_OLD}    [Backward] Layer a, bottom blob x diff: \x000.01",
        f"{PREFIX_OLD}    [Backward] Layer a, param blob 0 diff: 1.#QNAN",
        f"{PREFIX_OLD}    [Forward] Layer a, top blob a dxyz: 3",  # not data/diff: not a debug value
        f"{PREFIX_OLD}Iteration 0, loss = 1",
    ]
    t = parse_text_log("\n".join(lines) + "\n")
    table = t.segments[0].debug
    assert len(table.line) == len(table.value) == len(table.layer) == len(table.code) == 3
    assert [r.line for r in table] == [1, 2, 3]
    assert table.value[0] == 0.5 and math.isnan(table.value[1]) and math.isnan(table.value[2])


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_everyday_iteration_lines_and_their_odd_cousins(eol):
    lines = [
        "Iteration 10 (2.5 iter/s, 4s/10 iters), loss = 0.5",  # the fast paths
        "Iteration 10, lr = 0.01",
        "Iteration 20 (2.5 iter/s, e.s/10 iters), loss = 0.25",  # seconds that do not read
        "Iteration 20, lr =  0.02 ",  # extra spaces
        "Iteration 30 (2.5 iter/s, 4s/10 iters), loss = 1.#QNAN",
        "Iteration 30, lr = 0.03, m = 0.9",  # NVCaffe extras
        "Iteration 40 (2.5 iter/s, 4s/10 iters), loss = 7 [ 0 / 100 ]",  # suffix after the value
        "Iteration 40, lr = -nan",
    ]
    t = parse_text_log(eol.join(PREFIX_YEAR + x for x in lines) + eol)
    assert [(p.iteration, p.loss_text, p.seconds) for p in t.train] == [
        (10, "0.5", 4.0), (20, "0.25", None), (30, "1.#QNAN", 4.0), (40, "7", 4.0),
    ]  # fmt: skip
    assert math.isnan(t.train[2].loss) and t.train[3].loss == 7.0
    assert [(p.iteration, p.text, dict(p.extras)) for p in t.lr] == [
        (10, "0.01", {}), (20, "0.02", {}), (30, "0.03", {"m": 0.9}), (40, "-nan", {}),
    ]  # fmt: skip
    assert [p.lr for p in t.train[:3]] == [0.01, 0.02, 0.03]
