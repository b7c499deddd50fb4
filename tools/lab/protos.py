"""The two Caffe protobuf messages the lab writes: Datum (LMDB/LevelDB records) and BlobProto
(mean files), encoded by hand so the lab needs no generated protobuf code.

Field numbers from caffe.proto: Datum channels=1 height=2 width=3 data=4 label=5 float_data=6
encoded=7; BlobProto num=1 channels=2 height=3 width=4 data=5 (packed). Caffe's own C++ writers
emit repeated floats of a proto2 Datum unpacked (tag per value), so that is what we write; the
BlobProto data field is declared packed.
"""

from __future__ import annotations

import struct

import numpy as np


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int32/int64 negatives are ten-byte two's complement varints
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def datum(values: np.ndarray, label: int, *, as_float: bool) -> bytes:
    """A serialized Datum holding a C,H,W array: uint8 pixels in ``data`` or floats in ``float_data``."""
    c, h, w = values.shape
    out = bytearray()
    out += _key(1, 0) + _varint(c) + _key(2, 0) + _varint(h) + _key(3, 0) + _varint(w)
    if as_float:
        floats = np.ascontiguousarray(values, dtype="<f4").ravel()
        out += _key(5, 0) + _varint(int(label))
        tag = _key(6, 5)
        out += b"".join(tag + struct.pack("<f", float(v)) for v in floats)
    else:
        pixels = np.ascontiguousarray(values, dtype=np.uint8).tobytes()
        out += _key(4, 2) + _varint(len(pixels)) + pixels
        out += _key(5, 0) + _varint(int(label))
    return bytes(out)


def blob_proto(values: np.ndarray) -> bytes:
    """A serialized BlobProto (1,C,H,W) as Caffe's mean files are."""
    c, h, w = values.shape
    floats = np.ascontiguousarray(values, dtype="<f4").tobytes()
    out = bytearray()
    out += _key(1, 0) + _varint(1) + _key(2, 0) + _varint(c) + _key(3, 0) + _varint(h) + _key(4, 0) + _varint(w)
    out += _key(5, 2) + _varint(len(floats)) + floats
    return bytes(out)
