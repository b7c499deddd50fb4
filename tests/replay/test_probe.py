"""The input-probe net: the data layers verbatim, one Reduction per top, phases kept; reading its log."""

from __future__ import annotations

import pytest

from nandoctor.config.net import load_net
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import parse_file, parse_text
from nandoctor.core.types import InputError
from nandoctor.replay.plan import missing_paths, prepare_replay
from nandoctor.replay.probe import ProbeOutput, probe_net_text, read_probe
from tests.conftest import caffe_runs
from tests.log.conftest import parse_text_log

RUNS = caffe_runs()


def _check_probe(net_path, probe_text: str, outputs: list[ProbeOutput]) -> None:
    original = load_net(parse_file(net_path))
    probe = load_net(parse_text(probe_text, "probe.prototxt"))
    data = [ly for ly in original.layers if not ly.bottoms and ly.tops and ly.type not in ("Input", "MemoryData")]
    kept = [ly for ly in probe.layers if ly.type != "Reduction"]
    # the data layers are copied verbatim, in order, with their phases
    src = original.doc.text
    assert [src[ly.field.name_pos.offset : ly.field.value.end] for ly in data] == [
        probe.doc.text[ly.field.name_pos.offset : ly.field.value.end] for ly in kept
    ]
    for phase in ("TRAIN", "TEST"):
        layers = probe.phase_layers(phase)
        tops = [t for ly in layers if ly.type != "Reduction" for t in ly.tops]
        reducers = [ly for ly in layers if ly.type == "Reduction"]
        assert sorted(b for r in reducers for b in r.bottoms) == sorted(tops)  # every top reduced once
        assert {t for ly in original.phase_layers(phase) if ly in data for t in ly.tops} == set(tops)
        for r in reducers:
            assert r.param("reduction_param").get("operation") == "ASUM"
    assert {(o.layer, o.top) for o in outputs} == {(ly.name, t) for ly in data for t in ly.tops}


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_corpus_probe_keeps_sources_transforms_batches_and_phases(run, tmp_path):
    plan = prepare_replay(run, tmp_path / "out", solver=run / "solver.prototxt", log=run / "train.log", probe=True)
    assert len(plan.probes) == 1
    probe = plan.probes[0]
    _check_probe(run / "train_val.prototxt", probe.path.read_text(), probe.outputs)
    solver = load_solver(parse_file(plan.copy.path))
    assert solver.net_sources()["train"] == probe.path.resolve()
    assert solver.value("display") == 1 and solver.value("debug_info") is True
    assert solver.value("snapshot") == 0 and solver.value("snapshot_after_train") is False
    assert missing_paths(plan) == []  # same sources, resolved from the run folder


def test_v1_net_is_probed_through_silence_and_debug_info(tmp_path):
    net = tmp_path / "v1.prototxt"
    net.write_text(
        'name: "Old"\nlayers {\n  name: "mnist"\n  type: DATA\n  top: "data"\n  top: "label"\n'
        '  data_param { source: "mnist_lmdb" backend: LMDB batch_size: 64 }\n  include { phase: TRAIN }\n}\n'
        'layers {\n  name: "ip"\n  type: INNER_PRODUCT\n  bottom: "data"\n  top: "ip"\n}\n'
    )
    text, outputs, _ = probe_net_text(load_net(parse_file(net)))
    probe = load_net(parse_text(text, "p"))
    assert [ly.type for ly in probe.layers] == ["Data", "Silence"]
    assert probe.layers[1].bottoms == ["data", "label"] and probe.layers[1].include[0].phase == "TRAIN"
    assert [o.output for o in outputs] == ["data", "label"]


def test_nets_without_own_data_layers_are_refused(tmp_path):
    net = tmp_path / "deploy.prototxt"
    net.write_text('name: "D"\nlayer { name: "in" type: "Input" top: "data" }\n'
                   'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" }\n')  # fmt: skip
    with pytest.raises(InputError, match="no data layer"):
        probe_net_text(load_net(parse_file(net)))
    v0 = tmp_path / "v0.prototxt"
    v0.write_text('name: "Z"\nlayers { layer { name: "d" type: "data" source: "x" } top: "data" }\n')
    with pytest.raises(InputError, match="V1 or V2"):
        probe_net_text(load_net(parse_file(v0)))


def test_read_probe_names_the_first_bad_batch_per_top_and_phase():
    p = "I1123 10:00:00.000000  1 "
    log = ""
    for it in range(4):
        bad = "nan" if it >= 2 else "123.5"
        log += f"{p}solver.cpp:239] Iteration {it} (1 iter/s, 1s/1 iters), loss = 0\n"
        log += f"{p}solver.cpp:258]     Train net output #0: probe_data = 98.5\n"
        log += f"{p}solver.cpp:258]     Train net output #1: probe_label = {bad}\n"
    log += f"{p}solver.cpp:347] Iteration 4, Testing net (#0)\n"
    log += f"{p}solver.cpp:414]     Test net output #0: probe_data = inf\n"
    outputs = [ProbeOutput("probe_data", "data", "data", "HDF5Data"),
               ProbeOutput("probe_label", "data", "label", "HDF5Data")]  # fmt: skip
    hits = read_probe(parse_text_log(log), outputs)
    assert [(h["top"], h["phase"], h["iteration"]) for h in hits] == [("label", "train", 2), ("data", "test", 4)]
    assert read_probe(parse_text_log(log.replace("nan", "1").replace("inf", "1")), outputs) == []
