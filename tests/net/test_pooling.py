"""Pooling geometry against Caffe itself: every row of oracles/pooling.csv."""

from __future__ import annotations

import csv

import pytest

from nandoctor.config.pooling import PoolParams, pool_geometry
from nandoctor.config.textformat import parse_text
from tests.conftest import corpus_path


def _params(row: dict[str, str]) -> PoolParams:
    style = row["param_style"]
    common = {"pool": row["pool"], "round_mode": row["round_mode"]}
    kh, kw, sh, sw, ph, pw = (int(row[k]) for k in ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"))
    if style == "square":
        return PoolParams.of(kernel_size=kh, stride=sh, pad=ph, **common)
    if style == "split":
        return PoolParams.of(kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw, **common)
    extra = {}
    if sh != 1:
        extra["stride"] = sh
    if ph != 0:
        extra["pad"] = ph
    if style == "globalk":
        extra["kernel_size"] = kh
    return PoolParams.of(global_pooling=True, **extra, **common)


def _int(text: str) -> int | None:
    return int(text) if text != "" else None


def test_every_oracle_row_matches_caffe():
    rows = list(csv.DictReader(corpus_path("oracles", "pooling.csv").open()))
    assert len(rows) == 22020
    mismatches = []
    for row in rows:
        geo = pool_geometry(_params(row), int(row["H"]), int(row["W"]))
        got: dict[str, object] = {"status": geo.status, "error": geo.error or ""}
        want: dict[str, object] = {"status": row["status"], "error": row["caffe_error"]}
        if row["status"] != "rejected_setup":
            got.update(out_h=geo.out_h, out_w=geo.out_w)
            want.update(out_h=_int(row["out_h"]), out_w=_int(row["out_w"]))
        if row["status"] == "OK":
            got["status"], want["status"] = "ok", "ok"
            counts = geo.counts()
            got.update(nan=counts["nan"], flt=counts["neg_flt_max"], zero=counts["zero"])
            want.update(nan=int(row["n_nan_out"]), flt=int(row["n_neg_flt_max_out"]), zero=int(row["n_zero_out"]))
            cells = geo.empty_cells()
            got["cells"] = len(cells)
            want["cells"] = int(row["n_nan_out"]) + int(row["n_neg_flt_max_out"]) + int(row["n_zero_out"])
            assert sum(c.kind == "nan" for c in cells) == counts["nan"]
        if got != want:
            mismatches.append((row, got, want))
    assert not mismatches, f"{len(mismatches)} rows differ, first: {mismatches[:3]}"


@pytest.mark.parametrize(
    ("size", "nan"),
    [(25, 11), (26, 0), (24, 0)],
)
def test_seed_example_ave_k3_s5(size, nan):
    params = PoolParams.from_message(parse_text("pool: AVE kernel_size: 3 stride: 5").root)
    geo = pool_geometry(params, size, size)
    assert geo.counts()["nan"] == nan
    if nan:
        first = geo.empty_cells(limit=1)[0]
        assert (first.ph, first.pw, first.kind, first.divisor) == (0, 5, "nan", 0)
        assert geo.h.window(5) == (25, 28)


def test_max_empty_window_is_neg_flt_max():
    geo = pool_geometry(PoolParams.of(pool="MAX", kernel_size=2, stride=5), 10, 10)
    assert (geo.out_h, geo.out_w) == (3, 3)
    assert geo.counts() == {"nan": 0, "neg_flt_max": 5, "zero": 0}


def test_floor_and_padding_remove_the_empty_window():
    for extra in ({"round_mode": "FLOOR"}, {"pad": 1}):
        geo = pool_geometry(PoolParams.of(pool="AVE", kernel_size=3, stride=5, **extra), 25, 25)
        assert geo.ok and not geo.has_empty_window


def test_setup_checks_follow_caffe_order():
    assert "not both" in pool_geometry(PoolParams.of(stride=2), 8, 8).error
    assert "not both" in pool_geometry(PoolParams.of(kernel_size=2, kernel_h=2, kernel_w=2), 8, 8).error
    assert "pad is pad OR" in pool_geometry(PoolParams.of(kernel_size=3, pad_h=1), 8, 8).error
    assert (
        "Stride is stride OR"
        in pool_geometry(PoolParams.of(kernel_size=3, stride=1, stride_h=1, stride_w=1), 8, 8).error
    )
    assert "cannot be zero" in pool_geometry(PoolParams.of(kernel_size=0), 8, 8).error
    assert (
        "Padding implemented only" in pool_geometry(PoolParams.of(pool="STOCHASTIC", kernel_size=3, pad=1), 8, 8).error
    )


def test_from_message_reads_enums_by_number_and_defaults():
    p = PoolParams.from_message(parse_text("pool: 1 kernel_size: 2 round_mode: 1").root)
    assert (p.pool, p.round_mode, p.stride, p.pad) == ("AVE", "FLOOR", 1, 0)
    assert PoolParams.from_message(None).pool == "MAX"


def test_first_cell_matches_a_full_scan():
    # brute force over a grid: the fast first_cell equals the first cell of each kind in a full row-major scan
    for pool in ("AVE", "MAX"):
        for size_h in range(1, 14):
            for size_w in (size_h, size_h + 3):
                for k in (1, 2, 3):
                    for s in (2, 4, 5):
                        geo = pool_geometry(PoolParams.of(pool=pool, kernel_size=k, stride=s), size_h, size_w)
                        if not geo.ok:
                            continue
                        cells = geo.empty_cells()
                        for kind in ("nan", "zero", "neg_flt_max"):
                            want = next((c for c in cells if c.kind == kind), None)
                            assert geo.first_cell(kind) == want, (pool, size_h, size_w, k, s, kind)


def test_huge_inputs_are_fast():
    geo = pool_geometry(PoolParams.of(pool="AVE", kernel_size=2, stride=5), 2_000_000_000, 2_000_000_000)
    assert geo.counts()["nan"] > 0 and geo.first_cell("nan") is not None
