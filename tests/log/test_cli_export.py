"""``nandoctor log``: text summary, exit codes, CSV tables, JSON and the plot."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from nandoctor.cli.main import main
from nandoctor.log.export import trace_to_dict, write_csv
from nandoctor.log.parser import parse_log
from tests.log.conftest import FIXTURES


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_text_summary_and_exit_codes(capsys, tmp_path):
    assert main(["log", str(FIXTURES / "glog_year.log")]) == 1
    out = capsys.readouterr().out
    assert "first non-finite at iteration 30 (line 87)" in out
    assert "NAN300" in out and "NAN305" in out and "NAN330" in out
    healthy = tmp_path / "ok.log"
    healthy.write_text("I1123 10:00:00.0 1 solver.cpp:239] Iteration 0 (1 iter/s, 1s/1 iters), loss = 2\n")
    assert main(["log", str(healthy)]) == 0
    assert "No findings." in capsys.readouterr().out
    assert main(["log", str(tmp_path / "missing.log")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_cli_select_and_ignore(capsys):
    assert main(["log", str(FIXTURES / "glog_year.log"), "--select", "NAN330"]) == 1
    out = capsys.readouterr().out
    assert "NAN330" in out and "NAN300" not in out


def test_csv_tables_like_parse_log(tmp_path):
    trace = parse_log(FIXTURES / "glog_year.log")
    paths = write_csv(trace, tmp_path)
    assert sorted(p.name for p in paths) == ["glog_year.lr.csv", "glog_year.test", "glog_year.train"]
    rows = _rows(tmp_path / "glog_year.train")
    assert list(rows[0])[:4] == ["NumIters", "Seconds", "LearningRate", "loss"]
    assert [(r["NumIters"], r["Seconds"], r["LearningRate"], r["loss"]) for r in rows[:4]] == [
        ("0", "0.01", "0.1", "2.5"), ("10", "0.03", "0.1", "9.5"), ("20", "0.05", "0.1", "87.3365"),
        ("30", "0.07", "0.1", "-nan"),
    ]  # fmt: skip
    test_rows = _rows(tmp_path / "glog_year.test")
    assert [(r["NumIters"], r["accuracy"], r["loss"], r["LearningRate"]) for r in test_rows] == [
        ("20", "1", "-nan", "0.1")
    ]


def test_csv_debug_table(tmp_path):
    trace = parse_log(FIXTURES / "debug_info.log")
    write_csv(trace, tmp_path)
    rows = _rows(tmp_path / "debug_info.debug.csv")
    assert rows[1]["Layer"] == "pool1" and rows[1]["Phase"] == "test" and rows[1]["Value"] == "nan"
    # every row is its record, field by field
    records = [(seg.index, r) for seg in trace.segments for r in seg.debug]
    assert len(rows) == len(records) > 10
    for row, (run, r) in zip(rows, records, strict=True):
        value = f"{r.value:g}" if math.isfinite(r.value) else ("nan" if math.isnan(r.value) else str(r.value))
        assert row == {"NumIters": "" if r.iteration is None else str(r.iteration), "Phase": r.phase,
                       "Direction": r.direction, "Layer": r.layer, "Role": r.role, "Blob": r.blob, "What": r.what,
                       "Value": value, "Run": str(run), "Line": str(r.line)}  # fmt: skip


def test_json_trace_is_valid_json(capsys):
    assert main(["log", str(FIXTURES / "glog_year.log"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    seg = data["segments"][0]
    assert seg["train"][3]["loss"] == "nan" and seg["train"][3]["loss_text"] == "-nan"
    assert seg["solver"]["start_line"] == 5
    assert {f["code"] for f in data["findings"]} >= {"NAN300", "NAN330"}
    small = trace_to_dict(parse_log(FIXTURES / "debug_info.log"), debug_limit=3)
    assert small["segments"][0]["debug"]["truncated"] and len(small["segments"][0]["debug"]["records"]) == 3


def test_plot_png(tmp_path, capsys):
    out = tmp_path / "plot.png"
    main(["log", str(FIXTURES / "glog_year.log"), "--plot", str(out), "--csv", str(tmp_path / "csv")])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "csv" / "glog_year.train").is_file()


def test_plot_of_many_runs_has_one_legend_entry_per_series(tmp_path, monkeypatch):
    """A log of thousands of runs (restarts, concatenated logs) once took hours to plot: a line and a legend entry each."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.axes import Axes

    from nandoctor.report.log_plot import LABELLED_RUNS, plot_trace

    text = (FIXTURES / "glog_year.log").read_text()
    log = tmp_path / "many.log"
    log.write_text(text * (LABELLED_RUNS + 4))
    trace = parse_log(log)
    assert len(trace.segments) == LABELLED_RUNS + 4
    labels: list[str] = []
    real = Axes.legend

    def spy(self, *args, **kwargs):
        labels.extend(self.get_legend_handles_labels()[1])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "legend", spy)
    out = plot_trace(trace, tmp_path / "many.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = LABELLED_RUNS + 4
    assert labels == [f"loss (smoothed) ({runs} runs)", f"loss ({runs} runs)", f"lr ({runs} runs)"]


@pytest.mark.parametrize("name", ["glog_year.log", "debug_info.log", "concatenated.log", "<none>"])
def test_json_is_written_run_by_run_as_json_dumps_would_print_it(name, tmp_path):
    """--json streams one run at a time (the whole dict of a 1 GB log took 21 GB); the text is json.dumps's."""
    import io

    from nandoctor.log.export import write_trace_json
    from nandoctor.log.trace import Trace

    if name == "<none>":
        trace = Trace("x.log", [], {"lines": 0})
    else:
        path = FIXTURES / name
        if not path.exists():
            path = tmp_path / name
            path.write_text((FIXTURES / "glog_year.log").read_text() * 3)
        trace = parse_log(path)
    findings = [{"code": "NAN300", "message": "a\nb", "data": {"x": [1, 2.5, "nan"]}}, {}]
    out = io.StringIO()
    write_trace_json(trace, out, 5, findings=findings)
    assert out.getvalue() == json.dumps({**trace_to_dict(trace, 5), "findings": findings}, indent=1) + "\n"
