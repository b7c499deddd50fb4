"""Audit rows on writes: no symlink written through, nothing outside the output folder, no
input replaced, an output folder that cannot be used is a clear error (exit 2)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.hostile.helpers import assert_input_error, cli, copy_run, sha, tree


def _plant(out: Path, links: dict[str, Path]) -> None:
    out.mkdir()
    for name, target in links.items():
        (out / name).symlink_to(os.path.relpath(target, out))


def _victim(tmp_path: Path) -> Path:
    v = tmp_path / "victim"
    v.write_text("precious\n")
    return v


def _nothing_written_through(tmp_path: Path, before: dict[str, str], out: Path, names: list[str]) -> None:
    after = tree(tmp_path)
    changed = {k for k in before if before[k] != after.get(k) and not k.startswith(out.name + "/")}
    changed |= {k for k in after if k not in before and not k.startswith(out.name)}
    assert not changed, f"written outside {out}: {sorted(changed)}"
    for name in names:
        p = out / name
        assert not p.is_symlink() and p.is_file(), f"{p} should be a new regular file, not the planted link"


def test_diagnose_fix_symlinks_in_out(tmp_path):
    run = copy_run("r11", tmp_path / "run")
    victim = _victim(tmp_path)
    out = tmp_path / "out"
    _plant(out, {"solver.prototxt": run / "solver.prototxt", "fix.diff": victim})
    before = tree(tmp_path)
    r = cli("diagnose", run, "--fix", out, "--no-data")
    assert r.code == 1, r.err
    _nothing_written_through(tmp_path, before, out, ["solver.prototxt", "fix.diff"])
    assert sha(victim) == before["victim"] and sha(run / "solver.prototxt") == before["run/solver.prototxt"]


def test_replay_out_symlinks(tmp_path):
    run = copy_run("r02", tmp_path / "run")
    victim, victim2 = _victim(tmp_path), tmp_path / "victim2"
    victim2.write_text("also precious\n")
    out = tmp_path / "out"
    _plant(out, {"solver_debug.diff": victim, "replay.sh": victim2, "solver_debug.prototxt": run / "train.log"})
    before = tree(tmp_path)
    r = cli("replay", run, "--out", out)
    assert r.code == 0, r.err
    _nothing_written_through(tmp_path, before, out, ["solver_debug.diff", "replay.sh", "solver_debug.prototxt"])
    assert not os.access(victim2, os.X_OK), "replay.sh's chmod went through the link"


def test_log_csv_symlinks(tmp_path):
    run = copy_run("r02", tmp_path / "run")
    victim = _victim(tmp_path)
    out = tmp_path / "out"
    _plant(out, {"train.train": victim, "train.test": run / "train.log"})
    before = tree(tmp_path)
    r = cli("log", run / "train.log", "--csv", out)
    assert r.code in (0, 1), r.err
    _nothing_written_through(tmp_path, before, out, ["train.train"])


def test_scan_data_clean_report_symlink(tmp_path):
    run = copy_run("r02", tmp_path / "run")
    victim = _victim(tmp_path)
    (tmp_path / "clean.clean-report.json").symlink_to("victim")
    before = tree(tmp_path)
    r = cli("scan-data", run / "train_val.prototxt", "--clean", tmp_path / "clean", "--workers", "0")
    assert r.code == 1, r.err
    assert sha(victim) == before["victim"]
    assert not (tmp_path / "clean.clean-report.json").is_symlink()
    assert (tmp_path / "clean" / "data.mdb").is_file()
    assert {k for k, v in before.items() if tree(tmp_path).get(k) != v} <= {"clean.clean-report.json"}


def _two_phase_net(run: Path, layer_name: str) -> Path:
    """The run's net with a TEST copy of its data layer, both named ``layer_name``."""
    text = (run / "train_val.prototxt").read_text()
    head = text.split("layer {", 1)[1].split("}\n}\n", 1)[0]
    data = "layer {" + head + "}\n}\n"
    test = data.replace("phase: TRAIN", "phase: TEST")
    text = text.replace(data, data + test, 1).replace('name: "data"', f'name: "{layer_name}"')
    net = run / "evil.prototxt"
    net.write_text(text)
    return net


def test_layer_name_outside_out_lmdb(tmp_path):
    run = copy_run("r02", tmp_path / "run")
    net = _two_phase_net(run, "x/../../../elsewhere")
    out = tmp_path / "out"
    before = tree(tmp_path)
    r = cli("scan-data", net, "--clean", out, "--workers", "0")
    assert r.code == 1, r.err
    after = tree(tmp_path)
    new = sorted(k for k in after if k not in before)
    assert new and all(k == "out" or k.startswith("out/") or k.startswith("out.") for k in new), new
    # where the traversal would land from OUT/TRAIN_x (and a level either side)
    for base in (tmp_path, tmp_path.parent, tmp_path.parent.parent):
        assert not (base / "elsewhere").exists() and not (base / "elsewhere.clean-report.json").exists()
    assert any(k.endswith("data.mdb") for k in new)


def test_layer_name_outside_out_imagedata(tmp_path):
    from tests.hostile.fixtures import image_run

    run = image_run(tmp_path / "run", layer_name="y/../../../elsewhere", bad_entry=True, two_phases=True)
    out = tmp_path / "out"
    before = tree(tmp_path)
    r = cli("scan-data", run / "train_val.prototxt", "--clean", out, "--workers", "0")
    assert r.code == 1, (r.out, r.err)
    new = sorted(k for k in tree(tmp_path) if k not in before)
    assert new and all(k == "out" or k.startswith(("out/", "out.")) for k in new), new
    lists = [out / k.split("/", 1)[1] for k in new if k.startswith("out/") and not k.endswith(".json")]
    assert lists and all(p.is_file() and "img/0.png" in p.read_text() for p in lists), new


def test_fix_pointing_at_an_existing_file(tmp_path):
    run = copy_run("r11", tmp_path / "run")
    victim = _victim(tmp_path)
    r = cli("diagnose", run, "--fix", victim, "--no-data")
    assert_input_error(r, victim, "not a folder")
    assert victim.read_text() == "precious\n"


def test_fix_pointing_at_a_dangling_symlink(tmp_path):
    run = copy_run("r11", tmp_path / "run")
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere" / "deeper")
    r = cli("diagnose", run, "--fix", link, "--no-data")
    assert_input_error(r, link, "dangling symlink")
    assert not (tmp_path / "nowhere").exists()


def test_unwritable_output_folder(tmp_path):
    """A folder that cannot be written (here: below a regular file, which fails even for root)."""
    run = copy_run("r11", tmp_path / "run")
    blocker = _victim(tmp_path)
    target = blocker / "out"
    r = cli("diagnose", run, "--fix", target, "--no-data")
    assert_input_error(r, target)
    r = cli("log", run / "train.log", "--csv", target)
    assert_input_error(r, target)
    assert blocker.read_text() == "precious\n"


def test_replay_out_on_the_folder_holding_the_original_solver(tmp_path):
    run = copy_run("r02", tmp_path / "run")
    solver = run / "solver.prototxt"
    before = tree(run)
    (run / "solver_debug.prototxt").unlink()  # the run's own debug copy is one of its files, kept apart
    before = tree(run)
    r = cli("replay", run, "--out", run)
    assert "Traceback" not in r.err
    assert r.code in (0, 2), (r.code, r.err)
    after = tree(run)
    assert all(after.get(k) == v for k, v in before.items()), "an input was changed"
    assert sha(solver) == before["solver.prototxt"]
