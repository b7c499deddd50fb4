"""Audit rows on what nandoctor prints and copies: no raw escape sequence from input text on
the terminal, bytes outside an edit kept, a probe net that parses, paths printed as paths."""

from __future__ import annotations

import json
import re

from nandoctor.config.textformat import parse_text
from tests.hostile.helpers import cli, copy_run

ESC = "\x1b"


def test_escape_sequences_in_layer_names(tmp_path):
    run = copy_run("r03", tmp_path / "run")  # an empty pooling window: the culprit is a layer name
    net = run / "train_val.prototxt"
    net.write_text(net.read_text().replace('"pool1"', '"pool1\\033[2J\\033]0;owned\\007"'))
    r = cli("diagnose", run, "--no-data")
    assert r.code == 1, r.err
    assert "pool1" in r.out
    assert ESC not in r.out and "\x07" not in r.out, repr(r.out[:400])
    r = cli("lint", net)
    assert ESC not in r.out and ESC not in r.err


def test_fix_keeps_non_utf8_bytes_outside_the_edit(tmp_path):
    run = copy_run("r11", tmp_path / "run")
    solver = run / "solver.prototxt"
    raw = b"# r\xe9glage de l'\xe9quipe (latin-1)\n" + solver.read_bytes()
    solver.write_bytes(raw)
    out = tmp_path / "fix"
    r = cli("diagnose", run, "--fix", out, "--no-data")
    assert r.code == 1, r.err
    copy = out / "solver.prototxt"
    assert copy.is_file(), sorted(p.name for p in out.iterdir())
    patched = copy.read_bytes()
    assert patched.startswith(b"# r\xe9glage de l'\xe9quipe (latin-1)\n")
    assert "\ufffd".encode() not in patched
    assert solver.read_bytes() == raw


def test_probe_net_with_a_newline_in_a_layer_name(tmp_path):
    run = copy_run("r02", tmp_path / "run")
    net = run / "train_val.prototxt"
    net.write_text(net.read_text().replace('name: "data"', 'name: "da\\nta"', 1))
    out = tmp_path / "probe"
    r = cli("replay", run, "--out", out, "--probe-input")
    assert r.code == 0, r.err
    probes = [p for p in out.glob("*.prototxt") if "solver" not in p.name]
    assert probes, sorted(p.name for p in out.iterdir())
    for p in probes:
        parse_text(p.read_text(), str(p), "NetParameter")  # raises on invalid prototxt


def test_notes_print_paths_not_reprs(tmp_path):
    run = copy_run("r01", tmp_path / "run")
    solver = run / "solver.prototxt"
    solver.write_text(re.sub(r'net: ".*"', 'net: "missing.prototxt"', solver.read_text()))
    r = cli("diagnose", run, "--no-data", "--format", "json")
    notes = json.loads(r.out)["inputs"]["notes"]
    assert any("missing.prototxt" in n for n in notes), notes
    assert not any("PosixPath" in n for n in notes), notes
    r = cli("diagnose", run, "--no-data")
    assert "PosixPath" not in r.out + r.err
