"""``nandoctor scan-data``: exit codes, JSON, clean copies, shards and merge, bad input without tracebacks."""

from __future__ import annotations

import json

import numpy as np

from nandoctor.cli.main import main
from nandoctor.data.datum import encode_datum
from tests.data.builders import float_records, image_bytes, key, read_db, write_lmdb


def make_db(tmp_path):
    items = float_records(64)
    x = np.full(16, 0.5, np.float32)
    x[2] = np.nan
    items[40] = (key(40), encode_datum(1, 4, 4, label=1, float_data=x))
    return write_lmdb(tmp_path / "db", items)


def test_scan_text_and_exit_codes(tmp_path, capsys):
    path = make_db(tmp_path)
    assert main(["scan-data", str(path), "--batch-size", "8", "--workers", "0"]) == 1
    out = capsys.readouterr().out
    assert "NAN401" in out and "00000040" in out and "iteration 5" in out
    clean = write_lmdb(tmp_path / "ok", float_records(10))
    assert main(["scan-data", str(clean), "--workers", "0"]) == 0
    assert "No findings." in capsys.readouterr().out


def test_json_and_clean(tmp_path, capsys):
    path = make_db(tmp_path)
    code = main(
        [
            "scan-data",
            str(path),
            "--batch-size",
            "8",
            "--workers",
            "0",
            "--format",
            "json",
            "--clean",
            str(tmp_path / "out"),
        ]
    )
    assert code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["findings"][0]["data"]["record"] == "00000040"
    assert out["clean"][0]["kept"] == 63 and out["clean"][0]["removed"][0]["record"] == "00000040"
    assert len(read_db(tmp_path / "out", "lmdb")) == 63
    # the output must be new
    assert main(["scan-data", str(path), "--workers", "0", "--clean", str(tmp_path / "out")]) == 2
    assert "output exists" in capsys.readouterr().err


def test_shards_then_merge(tmp_path, capsys):
    path = make_db(tmp_path)
    for i in range(2):
        main(
            [
                "scan-data",
                str(path),
                "--batch-size",
                "8",
                "--workers",
                "0",
                "--shard",
                f"{i}/2",
                "--output",
                str(tmp_path / f"p{i}.json"),
                "--format",
                "json",
            ]
        )
    capsys.readouterr()
    assert main(["scan-data", "--merge", str(tmp_path / "p0.json"), str(tmp_path / "p1.json")]) == 1
    out = capsys.readouterr().out
    assert "00000040" in out and "64 of 64 records" in out


def test_bad_input_is_a_message(tmp_path, capsys):
    assert main(["scan-data", str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["scan-data", str(make_db(tmp_path)), "--shard", "3/2"]) == 2
    assert "--shard" in capsys.readouterr().err
    (tmp_path / "r.json").write_text("{not json")
    assert main(["scan-data", "--merge", str(tmp_path / "r.json")]) == 2
    assert "not a nandoctor data report" in capsys.readouterr().err
    assert main(["scan-data"]) == 2
    (tmp_path / "odd").mkdir()
    assert main(["scan-data", str(tmp_path / "odd")]) == 2
    assert "neither an LMDB" in capsys.readouterr().err


def _default_interrupt():
    # a test run started from a shell's background job has SIGINT ignored, and a child inherits that;
    # the child must react to Ctrl-C as it would in a terminal
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_gives_a_partial_report(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "big.png").write_bytes(image_bytes("PNG", (400, 400)))
    (tmp_path / "list.txt").write_text("".join(f"big.png {i % 5}\n" for i in range(4000)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nandoctor", "scan-data", str(tmp_path / "list.txt"), "--root", str(tmp_path),
         "--workers", "2", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_interrupt,
    )  # fmt: skip
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    report = json.loads(out)
    src = report["data"]["sources"][0]
    assert report["data"]["interrupted"] and 0 < src["records"] < 4000
    assert "NAN415" in {f["code"] for f in report["findings"]}


def test_replace_nonfinite_from_the_command_line(tmp_path, capsys):
    path = make_db(tmp_path)
    before = read_db(path, "lmdb")
    argv = ["scan-data", str(path), "--workers", "0", "--format", "json", "--clean", str(tmp_path / "fixed")]
    assert main([*argv, "--replace-nonfinite", "0"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["clean"][0]["repaired"][0]["record"] == "00000040" and not out["clean"][0]["removed"]
    fixed = read_db(tmp_path / "fixed", "lmdb")
    assert set(fixed) == set(before) and read_db(path, "lmdb") == before  # all kept, original untouched
    assert all(fixed[k] == before[k] for k in before if k != key(40))  # only the repaired record changed
    assert main(["scan-data", str(tmp_path / "fixed"), "--workers", "0"]) == 0
