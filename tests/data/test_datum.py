"""The hand-written Datum/BlobProto decoders, one record and vectorised, against the encoder."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nandoctor.data.datum import (
    CorruptRecord,
    decode_batch,
    decode_blobproto,
    decode_datum,
    encode_blobproto,
    encode_datum,
    repair_floats,
)


def test_roundtrip_raw_and_float():
    d = decode_datum(encode_datum(3, 2, 2, data=bytes(range(12)), label=7))
    assert d.shape == (3, 2, 2) and d.label == 7 and d.data == bytes(range(12)) and not d.encoded
    values = np.array([0.5, np.nan, -np.inf, 2.0], np.float32)
    for packed in (False, True):
        f = decode_datum(encode_datum(1, 2, 2, label=1, float_data=values, packed=packed))
        np.testing.assert_array_equal(f.float_data, values)


def test_negative_label_is_int32():
    assert decode_datum(encode_datum(1, 1, 1, data=b"\x01", label=-1)).label == -1


def test_caffe_writes_one_tag_per_float():
    raw = encode_datum(1, 1, 2, label=3, float_data=[1.0, 2.0])
    assert raw.count(b"\x35") == 2 and len(raw) == 2 + 2 + 2 + 2 + 10


@pytest.mark.parametrize("raw", [b"\x22\x10abc", b"\x08", b"\x0f\x00", b"\x00\x01", b"\x32\x03abc"])
def test_corrupt_records_raise(raw):
    with pytest.raises(CorruptRecord):
        decode_datum(raw)


def test_batch_matches_single_decoder_and_flags_odd_rows():
    rows = [encode_datum(1, 2, 2, label=i, float_data=np.full(4, i, np.float32)) for i in range(10)]
    rows[3] = rows[3][:-2]  # truncated: different length, decoded alone
    rows[5] = encode_datum(1, 2, 2, label=300, float_data=np.zeros(4))  # 2-byte label varint
    batches, leftovers = decode_batch(rows)
    got = {}
    for b in batches:
        for j, r in enumerate(b.rows.tolist()):
            got[r] = (int(b.label[j]), b.payload[j].tolist())
    for r, d in leftovers:
        if isinstance(d, CorruptRecord):
            got[r] = "corrupt"
        else:
            got[r] = (d.label, d.float_data.tolist())
    assert got[3] == "corrupt"
    assert got[5] == (300, [0.0] * 4)
    assert got[7] == (7, [7.0] * 4)
    assert len(got) == 10


def test_structural_mismatch_falls_back():
    a = encode_datum(1, 1, 4, data=b"abcd", label=1)
    b = bytearray(a)
    b[0] = 0x10  # same length, but field 2 where field 1 was: must not be sliced as if it were the template
    batches, leftovers = decode_batch([a, a, a, a, bytes(b)])
    assert sum(len(x.rows) for x in batches) == 4
    assert [r for r, _ in leftovers] == [4]


def test_repair_keeps_other_bytes():
    raw = encode_datum(1, 1, 3, label=2, float_data=[1.0, np.nan, np.inf])
    fixed, n = repair_floats(raw, 0.0)
    assert n == 2 and len(fixed) == len(raw)
    d = decode_datum(fixed)
    assert d.float_data.tolist() == [1.0, 0.0, 0.0] and d.label == 2
    diff = [i for i in range(len(raw)) if raw[i] != fixed[i]]
    assert all(i in range(len(raw) - 10, len(raw)) for i in diff)


def test_blobproto_roundtrip():
    arr = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)
    blob = decode_blobproto(encode_blobproto(arr))
    assert blob.shape == (1, 3, 2, 2)
    np.testing.assert_array_equal(blob.data, arr.ravel())
    assert decode_blobproto(encode_blobproto(arr, double=True)).data.dtype == np.float64


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes_never_crash(raw):
    with contextlib.suppress(CorruptRecord):
        decode_datum(raw)
    batches, leftovers = decode_batch([raw] * 5)
    assert sum(len(b.rows) for b in batches) + len(leftovers) == 5


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 4),
    st.integers(0, 300),
    st.integers(-5, 1000),
    st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=12),
    st.booleans(),
)
def test_fuzz_batch_equals_single(c, w, label, floats, packed):
    rows = [encode_datum(c, 1, w, label=label + i, float_data=floats, packed=packed) for i in range(6)]
    batches, leftovers = decode_batch(rows)
    seen = {}
    for b in batches:
        for j, r in enumerate(b.rows.tolist()):
            payload = b.payload[j] if b.payload is not None else np.zeros(0)
            seen[r] = (
                int(b.channels[j]),
                int(b.width[j]),
                int(b.label[j]),
                payload.view(np.uint32).tolist() if payload.dtype == np.float32 else [],
            )
    for r, d in leftovers:
        seen[r] = (d.channels, d.width, d.label, d.float_data.view(np.uint32).tolist())
    for i, raw in enumerate(rows):
        d = decode_datum(raw)
        expect = (d.channels, d.width, d.label, d.float_data.view(np.uint32).tolist())
        assert seen[i] == expect
