"""How the evidence is weighed: no false alarm on healthy, slow or noisy runs; diverging runs
caught before the NaN; contradictions lower confidence and are shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from nandoctor.cli.demo import examples_dir
from nandoctor.core.types import Cause, Finding, Severity
from nandoctor.diagnose.engine import decide, diagnose, score
from nandoctor.diagnose.gather import gather
from nandoctor.diagnose.inputs import discover
from nandoctor.diagnose.signals import Signal
from tests.conftest import corpus_path
from tests.diagnose.helpers import diagnose_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diagnose"


@pytest.mark.parametrize("name", ["noisy_healthy.log", "slow_plateau.txt", "excerpt_healthy.txt"])
def test_slow_or_noisy_runs_are_healthy(capsys, name):
    code, report = diagnose_json(capsys, "--log", str(FIXTURES / name))
    assert (code, report["verdict"], report["causes"]) == (0, "healthy", [])


def test_softmax_plateau_without_nan_is_not_an_alarm(capsys):
    """r53 sits near the plateau for a while and recovers: healthy."""
    run = corpus_path("caffe-runs", "r53")
    code, report = diagnose_json(capsys, str(run))
    assert (code, report["verdict"]) == (0, "healthy")


def test_loss_running_away_is_diverging_before_any_nan(capsys):
    code, report = diagnose_json(capsys, "--log", str(FIXTURES / "diverging.txt"))
    assert code == 1
    assert report["verdict"] == "diverging"
    assert report["first_nonfinite_iteration"] is None
    top = report["causes"][0]
    assert (top["cause"], top["culprit"]) == ("gradient_explosion", "base_lr")
    lines = [ev["location"]["line"] for ev in top["evidence"]]
    # the chain's links lead (where the loss took off, where it ended), then the first loss the log shows
    assert lines[0] == 2 and {1, 21} <= set(lines)


def test_growing_lr_is_diverging_and_blamed_on_the_policy(capsys):
    _code, report = diagnose_json(capsys, "--log", str(FIXTURES / "lr_growing.txt"))
    assert report["verdict"] == "diverging"
    assert report["causes"][0]["cause"] == "lr_policy"


def test_lr_outranks_a_growing_loss_when_the_lr_grows_too(capsys):
    """r55/r59: the loss explodes because the lr grows; the fix is the lr policy's gamma."""
    for run in ("r55", "r59"):
        _code, report = diagnose_json(capsys, str(corpus_path("caffe-runs", run)))
        ranked = [c["cause"] for c in report["causes"]]
        assert ranked[0] == "lr_policy"
        assert "gradient_explosion" in ranked[1:], "the growing loss is still shown, ranked lower"


def test_a_prediction_the_log_disproves_raises_no_alarm(tmp_path):
    """The pooling example's net would be NaN from iteration 0, but this log ran finite to the end:
    the geometry was not what the file suggests (another input size), so no false alarm."""
    pooling = examples_dir() / "pooling"
    healthy_log = examples_dir() / "healthy" / "train.log"
    d, _g = diagnose(discover(None, log=healthy_log, solver=pooling / "solver.prototxt", data_root=pooling))
    assert d.verdict.value == "healthy"


def test_contradictions_subtract_and_are_explained():
    f = Finding("NAN101", Severity.ERROR, Cause.POOLING, "empty window")
    rec = Finding("NAN401", Severity.ERROR, Cause.BAD_INPUT, "nan in record")
    sigs = [
        Signal(Cause.POOLING, 3.0, "empty AVE window", f, "pool1", 10),
        Signal(Cause.POOLING, -3.0, "the log was finite until iteration 40", f),
        Signal(Cause.BAD_INPUT, 6.0, "record 7 read at 39", rec, "db 7", 6),
        Signal(Cause.BAD_INPUT, 6.0, "record 8 read at 39", rec, "db 8", 6),  # same rule: counted once
    ]
    totals = score(sigs)
    assert totals[Cause.POOLING] == 0.0
    assert totals[Cause.BAD_INPUT] == 6.0
    assert totals[Cause.UNKNOWN] > 0


def test_contradiction_is_shown_in_the_ranking():
    """r04: the clean data scan speaks against bad input, which is ruled out with that reason."""
    run = corpus_path("caffe-runs", "r04")
    g = gather(discover(run))
    d = decide(g)
    assert d.causes[0].cause is Cause.LOSS_FUNCTION
    assert Cause.BAD_INPUT not in [c.cause for c in d.causes]
    why = dict(d.ruled_out)[Cause.BAD_INPUT]
    assert "data scan found no bad record" in why
    assert {"cause": "bad_input", "why": why} in d.to_dict()["ruled_out"]
    assert "lr_policy" in [r["cause"] for r in d.to_dict()["ruled_out"]], "every printed lr was finite"


def test_confidences_are_normalised_and_ranked():
    run = corpus_path("caffe-runs", "r02")
    d, _g = diagnose(discover(run))
    total = sum(c.confidence for c in d.causes)
    assert abs(total - 1.0) < 1e-9
    assert [c.confidence for c in d.causes] == sorted((c.confidence for c in d.causes), reverse=True)


def test_debug_growth_counts_for_the_cause_its_layer_names():
    from nandoctor.core.votes import VoteContext
    from nandoctor.diagnose.signals import origin_votes

    ctx = VoteContext(timeline=None, heads={"loss_bbox": "loss_bbox"})

    def debug_signals(f, _heads):
        return list(origin_votes(f, ctx))

    heads = ctx.heads
    explosion = Finding("NAN503", Severity.WARNING, Cause.GRADIENT_EXPLOSION, "grows", data={"loss_head": "loss_bbox"})
    data_jump = Finding("NAN503", Severity.WARNING, Cause.BAD_INPUT, "data jumps", data={"layer": "data"})
    unclear = Finding("NAN503", Severity.WARNING, Cause.UNKNOWN, "?", data={"candidates": ["pooling", "bad_input"]})
    assert [(s.cause, s.culprit) for s in debug_signals(explosion, heads)] == [
        (Cause.GRADIENT_EXPLOSION, "loss_bbox.loss_weight")
    ]
    assert [(s.cause, s.culprit) for s in debug_signals(data_jump, heads)] == [(Cause.BAD_INPUT, "data")]
    assert {s.cause for s in debug_signals(unclear, heads)} == {Cause.POOLING, Cause.BAD_INPUT}


def test_a_fast_learning_layer_that_explodes_first_is_the_culprit(tmp_path):
    """debug_info: fc2's weights jump first and fc2 learns 10x faster (lr_mult 10): fix that lr_mult."""
    from nandoctor.config.net import load_net
    from nandoctor.config.textformat import parse_file
    from nandoctor.diagnose import remedies
    from nandoctor.diagnose.culprit import fast_layer_culprit
    from nandoctor.fixes import patch_files

    path = tmp_path / "net.prototxt"
    path.write_text(
        'layer { name: "fc1" type: "InnerProduct" bottom: "data" top: "fc1" inner_product_param { num_output: 4 } }\n'
        'layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2"\n'
        "  param { lr_mult: 10 } param { lr_mult: 20 }\n"
        "  inner_product_param { num_output: 2 } }\n"
    )
    net = load_net(parse_file(path))
    growth = Finding(
        "NAN503", Severity.WARNING, Cause.GRADIENT_EXPLOSION, "fc2 jumps", data={"layer": "fc2", "phase": "update"}
    )
    sig = fast_layer_culprit(Signal(Cause.GRADIENT_EXPLOSION, 3.0, "grows", growth, "base_lr", 4), net)
    assert sig.culprit == "fc2.lr_mult"
    slow = Finding("NAN503", Severity.WARNING, Cause.GRADIENT_EXPLOSION, "fc1 jumps", data={"layer": "fc1"})
    assert fast_layer_culprit(Signal(Cause.GRADIENT_EXPLOSION, 3.0, "g", slow, "base_lr", 4), net).culprit == "base_lr"
    fix = remedies.lower_lr_mult(net, "fc2")
    (patched,) = patch_files(fix.edits)
    assert "param { lr_mult: 0.5 } param { lr_mult: 1 }" in patched.patched


def test_bad_records_are_named_compactly():
    from nandoctor.diagnose.remedies import describe_records

    def h5(row, ds="data"):
        return Finding(
            "NAN401",
            Severity.ERROR,
            Cause.BAD_INPUT,
            "x",
            data={"file": "d/a.h5", "row": row, "record": f"d/a.h5:{ds}[{row}]"},
        )

    def db(key):
        return Finding("NAN401", Severity.ERROR, Cause.BAD_INPUT, "x", data={"record": key, "source": "/x/train_lmdb/"})

    assert (
        describe_records([h5(1), h5(2), h5(3), h5(7), h5(9, "label")]) == "d/a.h5:data[1:4], data[7]; d/a.h5:label[9]"
    )
    assert describe_records([db("00000002"), db("00000001")]) == "train_lmdb records 00000001, 00000002"
    many = describe_records([db(f"{i:08d}") for i in range(25)])
    assert many.endswith("00000009 and 15 more")
