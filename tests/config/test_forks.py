"""Fork-aware lint: the fork a file is written for is recognised and said once; its constructs are
errors only on a Caffe that lacks them (``--caffe``), warnings about BVLC otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nandoctor.cli.main import main
from nandoctor.config import forks
from nandoctor.core.types import Severity
from tests.conftest import corpus_files

FORKS = Path(__file__).resolve().parents[1] / "fixtures" / "forks"
# each fixture (written for these tests) and the flavor it is written for
FIXTURES = {
    "sphereface_net.prototxt": "sphereface",
    "faster_rcnn_v1_net.prototxt": "faster-rcnn",
    "intel_plateau_solver.prototxt": "intel",
    "intel_engine_net.prototxt": "intel",
    "nvcaffe_solver.prototxt": "nvcaffe",
    "stepearly_solver.prototxt": "other",
}
ZOO_FORK_FILES = {
    "alexgkendall__SegNet-Tutorial__Models__segnet_basic_train.prototxt": "segnet",
    "chuanqi305__MobileNet-SSD__solver_train.prototxt": "ssd",
    "rbgirshick__py-faster-rcnn__models__pascal_voc__ZF__faster_rcnn_end2end__train.prototxt": "faster-rcnn",
    "BVLC__caffe__examples__cifar10__cifar10_full_sigmoid_train_test_bn.prototxt": "cifar-bn",
}


def lint(capsys, path, *args) -> tuple[int, list[dict]]:
    code = main(["lint", str(path), "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)["findings"]


def fork_file_findings(findings):
    return [f for f in findings if f["code"] == "NAN019"]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fork_fixture_has_no_error_and_names_its_fork_once(capsys, name):
    code, findings = lint(capsys, FORKS / name)
    assert not [f for f in findings if f["severity"] == "error"], findings
    (said,) = fork_file_findings(findings)
    assert said["severity"] == "warning" and "BVLC Caffe would refuse it" in said["message"]
    assert said["data"]["forks"] == [forks.FLAVORS[FIXTURES[name]]]
    assert f"--caffe {FIXTURES[name]}" in said["message"]
    assert code == 1  # the warning: BVLC Caffe would refuse the file


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_naming_the_fork_leaves_information_only(capsys, name):
    code, findings = lint(capsys, FORKS / name, "--caffe", FIXTURES[name])
    assert code == 0 and {f["severity"] for f in findings} == {"info"}
    assert "provides it" in fork_file_findings(findings)[0]["message"]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_on_bvlc_caffe_the_fork_constructs_are_errors(capsys, name):
    code, findings = lint(capsys, FORKS / name, "--caffe", "bvlc")
    errors = [f for f in findings if f["severity"] == "error"]
    assert code == 1 and fork_file_findings(errors) and len(errors) >= 2
    assert all(f["code"] in ("NAN003", "NAN014", "NAN019", "NAN200") for f in errors)


def test_another_fork_lacks_what_this_fork_defines(capsys):
    _, findings = lint(capsys, FORKS / "sphereface_net.prototxt", "--caffe", "ssd")
    by_code = {f["code"]: f["severity"] for f in findings}
    assert by_code["NAN003"] == by_code["NAN014"] == by_code["NAN019"] == "error"


def test_each_fork_construct_is_recognised(capsys):
    _, findings = lint(capsys, FORKS / "intel_engine_net.prototxt")
    values = sorted(f["data"].get("value") or f["data"].get("field") for f in findings if f["code"] == "NAN003")
    assert values == ["MKL2017", "MKLDNN", "engine"]
    _, findings = lint(capsys, FORKS / "faster_rcnn_v1_net.prototxt")
    (v1_type,) = [f for f in findings if f["data"].get("value") == "ROI_POOLING"]
    assert v1_type["location"]["line"] == 16 and v1_type["severity"] == "info"
    _, findings = lint(capsys, FORKS / "intel_plateau_solver.prototxt")
    (policy,) = [f for f in findings if f["code"] == "NAN200"]
    assert policy["severity"] == "info" and "BVLC Caffe would abort" in policy["message"]


def test_a_bvlc_file_names_no_fork_and_keeps_its_errors(capsys):
    seed = Path(__file__).resolve().parents[1] / "fixtures" / "net" / "seed_pool_25.prototxt"
    _, auto = lint(capsys, seed)
    _, bvlc = lint(capsys, seed, "--caffe", "bvlc")
    assert not fork_file_findings(auto) and auto == bvlc
    assert [f["code"] for f in auto if f["severity"] == "error"] == ["NAN101"]


def test_unknown_flavor_is_bad_input(capsys):
    assert main(["lint", str(FORKS / "sphereface_net.prototxt"), "--caffe", "torch7"]) == 2
    assert "unknown Caffe flavor 'torch7'" in capsys.readouterr().err


def test_flavor_words():
    assert forks.flavor_id("Intel-Caffe") == "intel" and forks.flavor_id("py_faster_rcnn") == "faster-rcnn"
    assert forks.severity_for(forks.FLAVORS["ssd"], None) is Severity.INFO
    assert forks.severity_for(forks.FLAVORS["ssd"], "ssd") is Severity.INFO
    assert forks.severity_for(forks.FLAVORS["ssd"], "bvlc") is Severity.ERROR


ZOO = corpus_files("zoo", pattern="*.prototxt")


@pytest.mark.parametrize("path", [p for p in ZOO if p.name in ZOO_FORK_FILES], ids=lambda p: p.name[:40])
def test_zoo_fork_files_have_no_error_and_name_their_fork(capsys, path):
    flavor = ZOO_FORK_FILES[path.name]
    _, findings = lint(capsys, path)
    assert not [f for f in findings if f["severity"] == "error"]
    assert fork_file_findings(findings)[0]["data"]["forks"] == [forks.FLAVORS[flavor]]
    code, findings = lint(capsys, path, "--caffe", flavor)
    assert code == 0 and {f["severity"] for f in findings} == {"info"}


def test_the_zoo_forks_are_all_found_and_bvlc_files_name_none(capsys):
    if not ZOO:
        pytest.skip("corpus not available (../shared/corpus/zoo)")
    named = {}
    for path in ZOO:
        _, findings = lint(capsys, path)
        said = fork_file_findings(findings)
        if said:
            named[path.name] = said[0]["data"]["forks"]
    assert named == {name: [forks.FLAVORS[flavor]] for name, flavor in ZOO_FORK_FILES.items()}
