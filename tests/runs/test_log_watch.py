"""``nandoctor log`` and ``nandoctor watch`` on real framework runs (tools/framework_lab/)."""

from __future__ import annotations

import csv
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from nandoctor.cli.main import main
from nandoctor.runs import read_run
from tests.runs.framework_fixtures import need


@pytest.mark.parametrize(
    "name,onset",
    [("hf_explode_sgd", "first non-finite at step 13"), ("pl_bad_val_nan_gn", "first non-finite at step 19")],
)
def test_log_summary_names_the_onset_and_exits_1(name, onset, capsys):
    assert main(["log", str(need(name))]) == 1
    out = capsys.readouterr().out
    assert onset in out
    assert "NAN7" in out


def test_log_of_a_healthy_run_has_no_findings(capsys):
    assert main(["log", str(need("hf_healthy_cls"))]) == 0
    out = capsys.readouterr().out
    assert "finite throughout" in out and "No findings" in out


def test_log_csv_has_one_row_per_logged_step(tmp_path, capsys):
    run_dir = need("pl_bad_val_nan_gn")
    main(["log", str(run_dir), "--csv", str(tmp_path)])
    run = read_run(run_dir)
    with (tmp_path / "pl_bad_val_nan_gn.train.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [p.step for p in run.points]
    assert rows[0]["source"].startswith("metrics.csv:")
    with (tmp_path / "pl_bad_val_nan_gn.eval.csv").open(newline="") as fh:
        evals = list(csv.DictReader(fh))
    assert [r["val_loss"] for r in evals] == ["nan"] * len(run.evals)


def test_log_json_and_plot_of_a_tensorboard_run(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    png = tmp_path / "run.png"
    assert main(["log", str(need("tb_amp_scale_collapse")), "--json", "--plot", str(png)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "tensorboard"
    assert any(r["loss_scale"] == "256" for r in doc["train"])
    assert [f["code"] for f in doc["findings"]] == ["NAN709"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _append_slowly(chunks: list[bytes], target: Path, pause: float = 0.01) -> threading.Thread:
    def write():
        with target.open("ab") as fh:
            for chunk in chunks:
                fh.write(chunk)
                fh.flush()
                time.sleep(pause)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def test_watch_stops_at_the_first_inf_of_a_growing_metrics_csv(tmp_path, capsys):
    rows = (need("pl_explode_sgd") / "lightning_logs/version_0/metrics.csv").read_bytes().splitlines(keepends=True)
    target = tmp_path / "metrics.csv"
    # half rows too: the watcher must wait for the newline instead of reading a cut number
    chunks = [piece for row in rows for piece in (row[: len(row) // 2], row[len(row) // 2 :])]
    writer = _append_slowly(chunks, target)
    code = main(["watch", str(target), "--interval", "0.05", "--timeout", "30"])
    writer.join()
    out = capsys.readouterr().out
    assert code == 1
    assert "loss = inf at step 27" in out
    assert "gradient_explosion" in out


def test_watch_of_a_healthy_growing_csv_times_out_with_0(tmp_path, capsys):
    rows = (need("pl_healthy_adam") / "lightning_logs/version_0/metrics.csv").read_bytes().splitlines(keepends=True)
    target = tmp_path / "metrics.csv"
    writer = _append_slowly(rows, target, pause=0.002)
    code = main(["watch", str(target), "--interval", "0.05", "--timeout", "1.5"])
    writer.join()
    assert code == 0
    assert "step 79: loss" in capsys.readouterr().out


def test_watch_follows_a_growing_tensorboard_event_file(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    data = (need("tb_explode_sgd") / "runs/events.out.tfevents.loop").read_bytes()
    folder = tmp_path / "runs"
    folder.mkdir()
    target = folder / "events.out.tfevents.live"
    target.write_bytes(data[:200])  # the event file exists, cut mid-record, before the watch starts
    writer = _append_slowly([data[i : i + 700] for i in range(200, len(data), 700)], target)
    code = main(["watch", str(folder), "--interval", "0.05", "--timeout", "30"])
    writer.join()
    out = capsys.readouterr().out
    assert code == 1
    assert "at step" in out and "gradient_explosion" in out


def test_watch_copies_nothing_into_the_run(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(need("hf_healthy_cls"), run_dir)
    before = sorted(p.name for p in run_dir.rglob("*"))
    assert main(["watch", str(run_dir), "--interval", "0.05", "--timeout", "0.3"]) == 0
    assert sorted(p.name for p in run_dir.rglob("*")) == before
