"""Replay generation: the debug copy differs from the original only in the intended fields, paths resolve."""

from __future__ import annotations

import hashlib
import json

import pytest

from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import Message, parse_file, parse_text
from nandoctor.core.types import InputError
from nandoctor.replay.locate import find_run, find_snapshots, read_solverstate_header
from nandoctor.replay.plan import MARGIN, missing_paths, prepare_replay
from nandoctor.replay.runner import Caffe
from nandoctor.replay.solver_copy import NO_TEST
from tests.conftest import caffe_runs
from tests.replay.conftest import FIXTURES

RUNS = caffe_runs()
INTENDED = {"net", "debug_info", "display", "max_iter", "test_interval", "test_initialization", "snapshot_prefix"}


def _fields(root: Message, text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in root.fields:
        value = text[f.value.start.offset : f.value.end] if isinstance(f.value, Message) else repr(f.value.value)
        out.setdefault(f.name, []).append(value)
    return out


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_corpus_debug_copy_changes_only_the_intended_fields(run, tmp_path):
    before = _digest(run)
    exp = json.loads((run / "expected.json").read_text())
    plan = prepare_replay(run, tmp_path / "out", solver=run / "solver.prototxt", log=run / "train.log")
    assert _digest(run) == before, "the run folder is read-only"
    original = parse_file(run / "solver.prototxt")
    copy_doc = parse_text(plan.copy.path.read_text(), str(plan.copy.path))
    old, new = _fields(original.root, original.text), _fields(copy_doc.root, copy_doc.text)
    assert {k: v for k, v in old.items() if k not in INTENDED} == {k: v for k, v in new.items() if k not in INTENDED}
    copy = load_solver(copy_doc)
    assert copy.value("debug_info") is True and copy.value("display") == 1
    # the replay stops past the earliest non-finite value the log shows, train display or test pass
    nan_at = min((i for i in (exp["first_nan_iteration"], exp.get("first_nonfinite_test_iteration")) if i is not None),
                 default=None)  # fmt: skip
    policy = copy.value("lr_policy")
    if exp.get("driver") == "step":
        # solver.step ignores max_iter: the replay steps as far as it needs and leaves max_iter alone
        # the onset the replay reads may come before the first NaN display (an lr line, say)
        assert plan.failure.first_nonfinite <= nan_at and plan.needs_pycaffe
        assert plan.steps == plan.failure.first_nonfinite + MARGIN
        assert copy.value("max_iter") == load_solver(original).value("max_iter")
        assert "--steps" in plan.command(Caffe("pycaffe", ("python3", "-I", "driver.py"), "test"))
    elif nan_at is not None and policy != "poly":
        assert copy.value("max_iter") == nan_at + MARGIN
    elif policy == "poly":
        assert copy.value("max_iter") == load_solver(original).value("max_iter")
        assert any("max_iter kept" in n for n in plan.notes)
    if exp.get("driver") != "step":
        assert plan.steps is None
    if copy.is_set("test_iter"):
        assert copy.value("test_interval") == NO_TEST and copy.value("test_initialization") is False
    assert str(copy.value("snapshot_prefix")).startswith(str((tmp_path / "out").resolve()))
    # the net path is absolute and the same file; every data source resolves from the run folder
    assert copy.net_sources()["train"] == (run / "train_val.prototxt").resolve()
    assert missing_paths(plan) == []
    assert plan.shell().startswith(f"cd {run.resolve()} && caffe train --solver=")


def test_fixture_resumes_from_the_last_snapshot_before_the_failure(run_dir, tmp_path):
    before = (run_dir / "solver.prototxt").read_text()
    plan = prepare_replay(run_dir, tmp_path / "out")
    assert (run_dir / "solver.prototxt").read_text() == before
    assert plan.failure.first_nonfinite == 4 and plan.failure.last_finite == 3
    assert plan.snapshot.iteration == 2  # the one at 4 was taken after the last finite display
    assert plan.snapshot.caffemodel == run_dir / "snap" / "run_iter_2.caffemodel"
    assert plan.command()[-1] == f"--snapshot={(run_dir / 'snap' / 'run_iter_2.solverstate').resolve()}"
    text = plan.copy.path.read_text()
    assert "# relative to the folder Caffe runs in" in text  # comments survive the edits
    assert "max_iter: 9" in text and "debug_info: true" in text
    assert missing_paths(plan) == []
    assert (tmp_path / "out" / "replay.sh").stat().st_mode & 0o111
    assert "--snapshot=" in (tmp_path / "out" / "replay.sh").read_text()
    diff = plan.copy.path.with_suffix(".diff").read_text()
    assert "-display: 1" not in diff and "+max_iter: 9" in diff
    data = json.loads((tmp_path / "out" / "replay.json").read_text())
    assert data["start_iteration"] == 2 and data["first_nonfinite_iteration"] == 4
    plan = prepare_replay(run_dir, tmp_path / "out2", resume=False)
    assert plan.snapshot is None and not any(a.startswith("--snapshot") for a in plan.command())


def test_no_log_gives_a_short_horizon(run_dir, tmp_path):
    (run_dir / "train.log").unlink()
    plan = prepare_replay(run_dir, tmp_path / "out", horizon=30)
    assert plan.max_iter == 30 and plan.snapshot is None
    assert any("no log found" in n for n in plan.notes)


def test_snapshots_of_a_corpus_run_are_read_from_their_headers():
    run = next((r for r in RUNS if r.name == "r57"), None)
    if run is None:
        pytest.skip("corpus not available")
    pairs = find_snapshots(find_run(run))
    assert [p.iteration for p in pairs] == [100, 200, 300]
    assert all(
        p.caffemodel is not None and p.caffemodel.name == f"nin_mini_iter_{p.iteration}.caffemodel" for p in pairs
    )
    assert read_solverstate_header(pairs[0].solverstate) == (100, "nin_mini_iter_100.caffemodel")


def test_bad_targets_are_input_errors(run_dir, tmp_path):
    with pytest.raises(InputError):
        prepare_replay(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(InputError, match="own folder"):
        prepare_replay(run_dir, run_dir)
    with pytest.raises(InputError, match="not a solver"):
        prepare_replay(run_dir / "train_val.prototxt", tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no solver"):
        prepare_replay(empty, tmp_path / "out")


def test_a_log_as_target_finds_its_run(run_dir, tmp_path):
    plan = prepare_replay(run_dir / "train.log", tmp_path / "out")
    assert plan.run.log_path == run_dir / "train.log" and plan.run.solver_path == run_dir / "solver.prototxt"
    assert plan.failure.first_nonfinite == 4


def test_caffe_root_style_runs_are_started_from_where_the_net_path_resolves(tmp_path):
    # BVLC's examples: `caffe train --solver=examples/tiny/solver.prototxt` from the Caffe root
    root = tmp_path / "caffe"
    ex = root / "examples" / "tiny"
    ex.mkdir(parents=True)
    fixture = (FIXTURES / "run").resolve()
    (ex / "solver.prototxt").write_text(
        (fixture / "solver.prototxt").read_text().replace('"train_val.prototxt"', '"examples/tiny/train_val.prototxt"')
    )
    (ex / "train_val.prototxt").write_text(
        (fixture / "train_val.prototxt").read_text().replace('"train_h5.txt"', '"examples/tiny/train_h5.txt"')
        .replace('"test_h5.txt"', '"examples/tiny/test_h5.txt"')
    )  # fmt: skip
    for name in ("train_h5.txt", "test_h5.txt"):
        (ex / name).write_text("x.h5\n")
    plan = prepare_replay(ex, tmp_path / "out")
    assert plan.run.cwd == root.resolve() and any("resolve from" in n for n in plan.notes)
    assert missing_paths(plan) == []
    assert plan.shell().startswith(f"cd {root.resolve()} && ")
    plan = prepare_replay(ex, tmp_path / "out", cwd=ex)  # an explicit --cwd wins
    assert plan.run.cwd == ex and missing_paths(plan)
