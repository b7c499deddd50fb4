"""Small data sets with known bad records, built in temporary directories by the tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from nandoctor.data.datum import encode_datum


def write_lmdb(path: Path, items: list[tuple[bytes, bytes]]) -> Path:
    import lmdb

    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for k, v in items:
            txn.put(k, v)
    env.close()
    return path


def write_leveldb(path: Path, items: list[tuple[bytes, bytes]]) -> Path:
    import plyvel

    db = plyvel.DB(str(path), create_if_missing=True)
    with db.write_batch() as wb:
        for k, v in items:
            wb.put(k, v)
    db.close()
    return path


def read_db(path: Path, kind: str) -> dict[bytes, bytes]:
    if kind == "lmdb":
        import lmdb

        env = lmdb.open(str(path), readonly=True, lock=False)
        with env.begin() as txn:
            out = dict(txn.cursor())
        env.close()
        return out
    import plyvel

    db = plyvel.DB(str(path))
    out = dict(db.iterator())
    db.close()
    return out


def key(i: int) -> bytes:
    return b"%08d" % i


def float_records(n: int = 100, shape=(1, 4, 4), seed: int = 0) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    c, h, w = shape
    return [
        (key(i), encode_datum(c, h, w, label=i % 10, float_data=rng.random(c * h * w, dtype=np.float32)))
        for i in range(n)
    ]


def uint8_records(n: int = 100, shape=(1, 4, 4), seed: int = 0, classes: int = 10) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    c, h, w = shape
    return [
        (
            key(i),
            encode_datum(c, h, w, data=rng.integers(0, 256, c * h * w, dtype=np.uint8).tobytes(), label=i % classes),
        )
        for i in range(n)
    ]


def image_bytes(fmt: str = "PNG", size=(8, 6), mode: str = "RGB", seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    img = Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()
