"""Caffe's ``Datum`` and ``BlobProto`` on the wire, decoded by hand (protobuf is not a dependency).

Datum (caffe.proto): channels=1, height=2, width=3 (int32 varints), data=4 (bytes: uint8
pixels C,H,W or, with encoded=7 true, a compressed image file), label=5 (int32),
float_data=6 (repeated float; proto2 without ``packed``, so C++ writes one 5-byte tag+fixed32
per value, but parsers must also accept the packed form).

Two decoders:

* :func:`decode_datum` -- one record, every wire type, unknown fields skipped, raises
  :class:`CorruptRecord` on anything protobuf itself would reject.
* :func:`decode_batch` -- many records at once. Records written by one program almost
  always share a byte layout: same length, same tags at the same offsets, only pixel
  bytes, floats and small varints differ. We decode the first record of each length
  group with :func:`decode_datum`, check the layout's structural bytes for every row in
  one numpy comparison, and slice pixels/floats/varints as 2-D arrays. Rows that do not
  fit fall back to :func:`decode_datum`. This keeps per-record Python work to a few list
  operations, which is what lets a scan stay near the speed of a bare cursor pass.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

WIRE_VARINT, WIRE_I64, WIRE_LEN, WIRE_I32 = 0, 1, 2, 5


class CorruptRecord(ValueError):
    """A record that protobuf would fail to parse (Caffe: ``ParseFromString`` returns false)."""


@dataclass(slots=True)
class Datum:
    channels: int = 0
    height: int = 0
    width: int = 0
    data: bytes = b""
    label: int = 0
    float_data: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    encoded: bool = False
    # byte offsets of each float value inside the serialized record (for in-place repair)
    float_offsets: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A protobuf varint at ``pos`` (before ``end``): (value, next position); CorruptRecord when broken."""
    result = shift = 0
    while True:
        if pos >= end:
            raise CorruptRecord("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise CorruptRecord("varint longer than 10 bytes")


def _int32(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


@dataclass(slots=True)
class _Field:
    number: int
    wire: int
    tag_start: int
    value_start: int
    value_end: int


def _fields(buf: bytes) -> list[_Field]:
    """Walk a message's fields; raise CorruptRecord where protobuf would fail."""
    out: list[_Field] = []
    pos, end = 0, len(buf)
    while pos < end:
        tag_start = pos
        key, pos = read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise CorruptRecord(f"field number 0 at byte {tag_start}")
        if wire == WIRE_VARINT:
            _, new = read_varint(buf, pos, end)
        elif wire == WIRE_I64:
            new = pos + 8
        elif wire == WIRE_I32:
            new = pos + 4
        elif wire == WIRE_LEN:
            length, pos = read_varint(buf, pos, end)
            new = pos + length
        else:
            raise CorruptRecord(f"unsupported wire type {wire} at byte {tag_start}")
        if new > end:
            raise CorruptRecord(f"field {number} runs past the end of the record (byte {tag_start})")
        out.append(_Field(number, wire, tag_start, pos, new))
        pos = new
    return out


def decode_datum(buf: bytes) -> Datum:
    """Decode one serialized Datum exactly as protobuf would (last value wins, floats accumulate)."""
    d = Datum()
    floats: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    for f in _fields(buf):
        n, w = f.number, f.wire
        if n in (1, 2, 3, 5, 7):
            if w != WIRE_VARINT:
                raise CorruptRecord(f"field {n} has wire type {w}, expected varint")
            value, _ = read_varint(buf, f.value_start, f.value_end)
            if n == 1:
                d.channels = _int32(value)
            elif n == 2:
                d.height = _int32(value)
            elif n == 3:
                d.width = _int32(value)
            elif n == 5:
                d.label = _int32(value)
            else:
                d.encoded = bool(value)
        elif n == 4:
            if w != WIRE_LEN:
                raise CorruptRecord(f"field data has wire type {w}, expected bytes")
            d.data = bytes(buf[f.value_start : f.value_end])
        elif n == 6:
            if w == WIRE_I32:
                floats.append(np.frombuffer(buf, "<f4", 1, f.value_start))
                offsets.append(np.array([f.value_start], np.int64))
            elif w == WIRE_LEN:
                size = f.value_end - f.value_start
                if size % 4:
                    raise CorruptRecord("packed float_data length is not a multiple of 4")
                floats.append(np.frombuffer(buf, "<f4", size // 4, f.value_start))
                offsets.append(f.value_start + 4 * np.arange(size // 4, dtype=np.int64))
            else:
                raise CorruptRecord(f"field float_data has wire type {w}")
    if floats:
        d.float_data = np.concatenate(floats).astype(np.float32)
        d.float_offsets = np.concatenate(offsets)
    return d


def encode_datum(
    channels: int = 0,
    height: int = 0,
    width: int = 0,
    data: bytes | None = None,
    label: int | None = None,
    float_data=None,
    encoded: bool | None = None,
    packed: bool = False,
) -> bytes:
    """Serialize a Datum the way C++ protobuf does (field order, unpacked floats by default)."""
    out = bytearray()

    def varint(value: int) -> None:
        value &= 0xFFFFFFFFFFFFFFFF
        while True:
            b = value & 0x7F
            value >>= 7
            if value:
                out.append(b | 0x80)
            else:
                out.append(b)
                return

    for number, value in ((1, channels), (2, height), (3, width)):
        if value is not None:
            varint(number << 3)
            varint(value)
    if data is not None:
        varint(4 << 3 | WIRE_LEN)
        varint(len(data))
        out += data
    if label is not None:
        varint(5 << 3)
        varint(label)
    if float_data is not None:
        values = np.asarray(float_data, dtype="<f4").ravel()
        if packed:
            varint(6 << 3 | WIRE_LEN)
            varint(4 * values.size)
            out += values.tobytes()
        elif values.size:
            rows = np.empty((values.size, 5), np.uint8)
            rows[:, 0] = 6 << 3 | WIRE_I32
            rows[:, 1:] = values.view(np.uint8).reshape(-1, 4)
            out += rows.tobytes()
    if encoded is not None:
        varint(7 << 3)
        varint(int(encoded))
    return bytes(out)


def repair_floats(buf: bytes, replacement: float) -> tuple[bytes, int]:
    """Replace non-finite float_data values in place; every other byte stays as it was."""
    d = decode_datum(buf)
    if d.float_offsets is None:
        return buf, 0
    bad = ~np.isfinite(d.float_data)
    count = int(bad.sum())
    if not count:
        return buf, 0
    out = bytearray(buf)
    packed = struct.pack("<f", replacement)
    for off in d.float_offsets[bad].tolist():
        out[off : off + 4] = packed
    return bytes(out), count


# --------------------------------------------------------------------------- batches


@dataclass(slots=True)
class DecodedBatch:
    """Rows that share one layout: per-row header fields and a 2-D payload (uint8 or float32)."""

    rows: np.ndarray  # indices into the input list
    channels: np.ndarray
    height: np.ndarray
    width: np.ndarray
    label: np.ndarray  # int64
    encoded: np.ndarray  # bool
    payload: np.ndarray | None  # (n, d) uint8 pixels or float32 values; None for encoded images
    is_float: bool
    encoded_bytes: list[bytes] | None = None  # compressed image files when encoded


def _layout(buf: bytes) -> tuple[list[_Field], Datum] | None:
    try:
        fields = _fields(buf)
        datum = decode_datum(buf)
    except CorruptRecord:
        return None
    return fields, datum


def _varint_columns(arr: np.ndarray, start: int, end: int) -> np.ndarray:
    """Decode a varint occupying the same byte columns in every row (int32 semantics)."""
    cols = arr[:, start:end].astype(np.uint64) & np.uint64(0x7F)
    shifts = (np.arange(end - start, dtype=np.uint64) * np.uint64(7))[None, :]
    value = np.bitwise_or.reduce(cols << shifts, axis=1)
    low = (value & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return np.where(low >= 1 << 31, low - (1 << 32), low)


def decode_batch(
    values: list[bytes], lengths: np.ndarray | None = None
) -> tuple[list[DecodedBatch], list[tuple[int, Datum | CorruptRecord]]]:
    """Decode many records: (batches of same-layout rows, [(row, Datum or CorruptRecord)] left over)."""
    n = len(values)
    leftovers: list[tuple[int, Datum | CorruptRecord]] = []
    batches: list[DecodedBatch] = []
    if not n:
        return batches, leftovers
    if lengths is None:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    order = np.argsort(lengths, kind="stable")
    sorted_len = lengths[order]
    cuts = np.flatnonzero(np.diff(sorted_len)) + 1
    for group in np.split(order, cuts):
        if len(group) < 4:
            for i in group.tolist():
                leftovers.append((i, _decode_or_error(values[i])))
            continue
        _decode_group(values, group, batches, leftovers)
    return batches, leftovers


def _decode_or_error(buf: bytes) -> Datum | CorruptRecord:
    try:
        return decode_datum(buf)
    except CorruptRecord as exc:
        return exc


def _decode_group(values, group: np.ndarray, batches: list, leftovers: list) -> None:
    first = int(group[0])
    layout = _layout(values[first])
    if layout is None:
        # the first row is corrupt: try the next one as template, the rest follow
        leftovers.append((first, _decode_or_error(values[first])))
        if len(group) > 1:
            _decode_group(values, group[1:], batches, leftovers)
        return
    fields, _template = layout
    numbers = [f.number for f in fields]
    # repeated header fields, or both packed and unpacked floats: leave to the exact decoder
    if any(numbers.count(k) > 1 for k in (1, 2, 3, 4, 5, 7)) or any(k not in (1, 2, 3, 4, 5, 6, 7) for k in numbers):
        for i in group.tolist():
            leftovers.append((i, _decode_or_error(values[i])))
        return
    length = len(values[first])
    rows_in_order = len(group) == len(values)  # one layout for the whole block (the usual case)
    joined = b"".join(values) if rows_in_order else b"".join([values[i] for i in group.tolist()])
    arr = np.frombuffer(joined, np.uint8).reshape(len(group), length)
    tmpl = arr[0]
    # structural byte positions that must equal the template in every row
    struct_pos: list[np.ndarray] = []
    varint_pos: list[np.ndarray] = []  # positions whose continuation bit must match
    float_cols: np.ndarray | None = None
    data_span: tuple[int, int] | None = None
    header_spans: dict[int, tuple[int, int]] = {}
    unpacked_floats = [f for f in fields if f.number == 6 and f.wire == WIRE_I32]
    for f in fields:
        if f.number == 6 and f.wire == WIRE_I32:
            continue
        struct_pos.append(np.arange(f.tag_start, f.value_start))
        if f.wire == WIRE_VARINT:
            varint_pos.append(np.arange(f.value_start, f.value_end))
            header_spans[f.number] = (f.value_start, f.value_end)
        elif f.number == 4:
            data_span = (f.value_start, f.value_end)
        elif f.number == 6:
            float_cols = f.value_start + np.arange(f.value_end - f.value_start)
    if unpacked_floats:
        starts = np.fromiter((f.value_start for f in unpacked_floats), np.int64, len(unpacked_floats))
        struct_pos.append(starts - 1)  # the one-byte tag 0x35 before every value
        float_cols = (starts[:, None] + np.arange(4)[None, :]).ravel()
    ok = np.ones(len(group), bool)
    if struct_pos:
        pos = np.concatenate(struct_pos)
        ok &= (arr[:, pos] == tmpl[pos]).all(axis=1)
    if varint_pos:
        pos = np.concatenate(varint_pos)
        ok &= ((arr[:, pos] & 0x80) == (tmpl[pos] & 0x80)).all(axis=1)
    for i in group[~ok].tolist():
        leftovers.append((i, _decode_or_error(values[i])))
    if not ok.any():
        return
    good = arr[ok] if not ok.all() else arr
    rows = group[ok]

    def header(number: int, default: int) -> np.ndarray:
        span = header_spans.get(number)
        if span is None:
            return np.full(len(rows), default, np.int64)
        return _varint_columns(good, *span)

    encoded = header(7, 0).astype(bool)
    is_float = float_cols is not None and (data_span is None or data_span[0] == data_span[1])
    payload = None
    enc_bytes = None
    if encoded.any():
        # an encoded Datum's data is a compressed file: keep bytes, decode images one by one
        lo, hi = data_span or (0, 0)
        enc_bytes = [values[i][lo:hi] for i in rows.tolist()]
    elif is_float:
        payload = np.ascontiguousarray(good[:, float_cols]).view("<f4")
    elif data_span is not None:
        payload = good[:, data_span[0] : data_span[1]]
    else:
        payload = np.zeros((len(rows), 0), np.uint8)
    batches.append(
        DecodedBatch(
            rows=rows,
            channels=header(1, 0),
            height=header(2, 0),
            width=header(3, 0),
            label=header(5, 0),
            encoded=encoded,
            payload=payload,
            is_float=bool(is_float),
            encoded_bytes=enc_bytes,
        )
    )


# --------------------------------------------------------------------------- BlobProto (mean files)


@dataclass(slots=True)
class Blob:
    shape: tuple[int, ...]
    data: np.ndarray  # float64 if double_data was used, else float32


def decode_blobproto(buf: bytes) -> Blob:
    """BlobProto: num=1 channels=2 height=3 width=4, data=5 (packed float), shape=7 (BlobShape dim=1),
    double_data=8. Caffe's mean file is one of these; it can hold NaN like any other data."""
    legacy = {1: 0, 2: 0, 3: 0, 4: 0}
    shape: list[int] | None = None
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    for f in _fields(buf):
        if f.number in legacy and f.wire == WIRE_VARINT:
            legacy[f.number] = _int32(read_varint(buf, f.value_start, f.value_end)[0])
        elif f.number == 5:
            floats.append(_repeated(buf, f, "<f4", 4, WIRE_I32))
        elif f.number == 8:
            doubles.append(_repeated(buf, f, "<f8", 8, WIRE_I64))
        elif f.number == 7 and f.wire == WIRE_LEN:
            sub = buf[f.value_start : f.value_end]
            dims: list[int] = []
            for g in _fields(sub):
                if g.number != 1:
                    continue
                if g.wire == WIRE_VARINT:
                    dims.append(read_varint(sub, g.value_start, g.value_end)[0])
                elif g.wire == WIRE_LEN:
                    pos = g.value_start
                    while pos < g.value_end:
                        v, pos = read_varint(sub, pos, g.value_end)
                        dims.append(v)
            shape = dims
    data = np.concatenate(doubles) if doubles else (np.concatenate(floats) if floats else np.zeros(0, np.float32))
    if shape is None:
        shape = [legacy[1], legacy[2], legacy[3], legacy[4]]
    return Blob(tuple(shape), data)


def _repeated(buf: bytes, f: _Field, dtype: str, size: int, wire: int) -> np.ndarray:
    if f.wire == WIRE_LEN:
        n = (f.value_end - f.value_start) // size
        return np.frombuffer(buf, dtype, n, f.value_start)
    if f.wire == wire:
        return np.frombuffer(buf, dtype, 1, f.value_start)
    raise CorruptRecord(f"field {f.number} has wire type {f.wire}")


def encode_blobproto(array, double: bool = False) -> bytes:
    """A BlobProto with ``shape`` and packed ``data`` (as pycaffe's array_to_blobproto writes)."""
    arr = np.asarray(array)
    out = bytearray()

    def varint(value: int) -> None:
        while True:
            b = value & 0x7F
            value >>= 7
            out.append(b | 0x80 if value else b)
            if not value:
                return

    dims = bytearray()
    for d in arr.shape:
        v = int(d)
        while True:
            b = v & 0x7F
            v >>= 7
            dims.append(b | 0x80 if v else b)
            if not v:
                break
    varint(7 << 3 | WIRE_LEN)
    varint(len(dims) + 2)
    out.append(1 << 3 | WIRE_LEN)
    out.append(len(dims))
    out += dims
    payload = arr.astype("<f8" if double else "<f4").tobytes()
    varint((8 if double else 5) << 3 | WIRE_LEN)
    varint(len(payload))
    out += payload
    return bytes(out)
