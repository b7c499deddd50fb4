"""A fuzz test per reader: whatever the bytes, a result or an InputError, never a traceback.

Each test starts from real files (fixtures of this repository, files written by the real
libraries) and mutates them. In CI every test runs a few hundred cases (2,750 in all,
about twenty seconds); the nightly run grows each to 100,000 or more::

    NANDOCTOR_FUZZ_EXAMPLES=100000 PYTHONPATH=src python3 -m pytest -q -p no:cacheprovider tests/hostile/test_fuzz.py

(``--hypothesis-profile nightly`` does the same.) A corrupt LMDB is not fuzzed byte by byte
here: liblmdb trusts its pages, and surviving that is the process pool's crash isolation,
covered by the data tests; the records inside an LMDB are.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.core.types import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CI_EXAMPLES = {"fast": 500, "files": 300, "slow": 150}
NIGHTLY = int(os.environ.get("NANDOCTOR_FUZZ_EXAMPLES", "0"))

settings.register_profile("nightly", max_examples=100_000)


def fuzz(weight: str):
    """Settings of one fuzz test: its CI size, or the nightly size when asked for."""
    n = NIGHTLY or (settings().max_examples if settings._current_profile == "nightly" else CI_EXAMPLES[weight])
    return settings(max_examples=n, deadline=None, database=None, derandomize=not NIGHTLY,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


def survives(fn, *args) -> None:
    try:
        fn(*args)
    except InputError as exc:
        str(exc)  # the message must render too


def mutated(seed: bytes, pieces: list[bytes]) -> st.SearchStrategy[bytes]:
    """``seed`` cut, spliced with ``pieces`` and flipped in a few bytes."""

    @st.composite
    def build(draw):
        data = bytearray(seed)
        for _ in range(draw(st.integers(0, 4))):
            op = draw(st.sampled_from(["cut", "insert", "flip", "dup"]))
            at = draw(st.integers(0, max(0, len(data))))
            if op == "cut":
                del data[at : at + draw(st.integers(0, 64))]
            elif op == "insert":
                data[at:at] = draw(st.sampled_from(pieces) | st.binary(max_size=16))
            elif op == "flip" and data:
                data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
            elif op == "dup":
                data[at:at] = data[at : at + draw(st.integers(0, 200))]
        return bytes(data)

    return build()


# ------------------------------------------------------------------ prototxt (text format + schema)
NET = (FIXTURES / "config").glob("*.prototxt")
PROTO_SEED = b"".join(sorted(p.read_bytes() for p in NET))[:6000] or b'layer { name: "a" type: "ReLU" }\n'
PROTO_PIECES = [b"{", b"}", b"[", b"]", b":", b'"', b"'", b"\\", b"#", b"-", b"1e999", b"nan", b"inf", b"0x",
                b"99999999999999999999999", b"layer {", b"true", b"f", b"\xff", b"\n"]  # fmt: skip


@fuzz("fast")
@given(mutated(PROTO_SEED, PROTO_PIECES), st.sampled_from(["auto", "NetParameter", "SolverParameter", None]))
def test_fuzz_prototxt(data, root):
    from nandoctor.config.net import load_net
    from nandoctor.config.textformat import parse_text
    from nandoctor.config.validate import validate

    def run():
        doc = parse_text(data.decode("utf-8", "replace"), "fuzz.prototxt", root)
        if root in ("NetParameter", "SolverParameter"):
            validate(doc, root)
        if root == "NetParameter":
            load_net(doc)

    survives(run)


# ------------------------------------------------------------------ Caffe logs
LOG_SEED = b"".join(p.read_bytes()[:3000] for p in sorted((FIXTURES / "log").glob("*.log"))[:4])
LOG_PIECES = [b"Iteration ", b", loss = ", b"nan", b"-nan", b"inf", b"1e999", b"\n", b"\x1f\x8b", b"lr = ",
              b"Initializing solver from parameters:\n", b"] Layer ", b"Log file created at: ", b"9" * 400,
              b"Test net output #0: ", b"*** Aborted at ", b"\r"]  # fmt: skip


@fuzz("fast")
@given(mutated(LOG_SEED, LOG_PIECES))
def test_fuzz_log(data):
    from nandoctor.log.parser import parse_log
    from nandoctor.log.symptoms import symptoms

    def run():
        stream = io.BytesIO(data)
        stream.name = "fuzz.log"
        symptoms(parse_log(stream, workers=0))

    survives(run)


# ------------------------------------------------------------------ data sets
def _datum_seed() -> bytes:
    from nandoctor.data.datum import encode_datum

    return encode_datum(1, 2, 3, label=3, float_data=np.arange(6, dtype=np.float32))


def _scan(path: Path, **kw) -> None:
    from nandoctor.data.api import scan_source

    scan_source(str(path), workers=0, progress=False, **kw)


records = st.lists(mutated(_datum_seed(), [b"\x08", b"\x12", b"\x3a", b"\xff" * 10, b"\x00"]), min_size=1, max_size=6)


@fuzz("files")
@given(records)
def test_fuzz_lmdb_records(values):
    import lmdb

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "db")
        env = lmdb.open(str(path), map_size=1 << 22)
        with env.begin(write=True) as txn:
            for i, v in enumerate(values):
                txn.put(b"%08d" % i, v)
        env.close()
        survives(_scan, path)


@fuzz("slow")
@given(records)
def test_fuzz_leveldb_records(values):
    import plyvel

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "db")
        db = plyvel.DB(str(path), create_if_missing=True)
        for i, v in enumerate(values):
            db.put(b"%08d" % i, v)
        db.close()
        survives(_scan, path)


def _h5_seed() -> bytes:
    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp, "seed.h5")
        with h5py.File(p, "w") as f:
            f["data"] = np.arange(24, dtype=np.float32).reshape(4, 1, 2, 3)
            f["label"] = np.arange(4, dtype=np.float32)
        return p.read_bytes()


@fuzz("slow")
@given(
    st.one_of(
        mutated(_h5_seed(), [b"\x00" * 8, b"\xff" * 8, b"HDF"]),
        st.builds(lambda a, b: (a, b), st.sampled_from(["f4", "f8", "i4", "u1", "i8"]), st.lists(st.integers(0, 5), max_size=4)),
    ),
    st.sampled_from([1.0, 1e30, float("nan")]),
)  # fmt: skip
def test_fuzz_hdf5(content, fill):
    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp, "f.h5")
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            dtype, dims = content
            with h5py.File(p, "w") as f:
                f.create_dataset("data", shape=tuple(dims), dtype=dtype)
                if dims and dtype.startswith("f"):
                    f["data"][...] = fill
                f["label"] = np.zeros(dims[:1] or (), dtype="f4")
        Path(tmp, "list.txt").write_text(f"{p}\n")
        survives(_scan, p)
        survives(_scan, Path(tmp, "list.txt"))


def _png() -> bytes:
    from tests.hostile.fixtures import png

    return png(1)


@fuzz("files")
@given(
    st.lists(st.sampled_from(["img/a.png 0", "img/b.png 1", "img/missing.png 2", "img/a.png", "img/a.png -1",
                              "img/a.png 99999999999999999999", "  ", "img/b.png 1 2", "\x00", "img/a.png x"])
             | st.text(max_size=30), max_size=6),
    mutated(_png(), [b"\x00" * 4, b"IEND", b"\xff\xd8"]),
)  # fmt: skip
def test_fuzz_image_list(lines, image):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "img").mkdir()
        Path(tmp, "img", "a.png").write_bytes(_png())
        Path(tmp, "img", "b.png").write_bytes(image)
        lst = Path(tmp, "list.txt")
        lst.write_text("\n".join(lines) + "\n", errors="replace")
        survives(lambda: _scan(lst, kind="imagelist", root=tmp))


# ------------------------------------------------------------------ torch bundles (JSON only: no torch needed)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FACT_KEYS = ["steps", "losses", "events", "first_nonfinite", "lr", "grad_norms", "amp", "batch", "layers"]


@fuzz("fast")
@given(st.dictionaries(st.sampled_from(FACT_KEYS) | st.text(max_size=6), json_values, max_size=6), json_values)
def test_fuzz_bundle_json(facts, diagnosis):
    from nandoctor.torch.bundle import FINDINGS, FORMAT, MANIFEST, STATE, diagnose_bundle

    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        (b / STATE).mkdir()
        (b / MANIFEST).write_text(json.dumps({"format": FORMAT}))
        (b / FINDINGS).write_text(json.dumps({"facts": facts, "diagnosis": diagnosis}))
        survives(diagnose_bundle, b)


# ------------------------------------------------------------------ framework runs (HF, Lightning, TensorBoard)
def _seed(pattern: str) -> bytes:
    found = sorted((FIXTURES / "frameworks").glob(pattern))
    return found[0].read_bytes()[:20_000] if found else b""


RUN_SEEDS = {
    "trainer_state.json": _seed("hf_bad_train_nan/*/trainer_state.json"),
    "metrics.csv": _seed("pl_explode_sgd/lightning_logs/version_0/metrics.csv"),
    "events.out.tfevents.fuzz": _seed("tb_*/runs/events.out.tfevents.*"),
}
RUN_PIECES = [b"nan", b"NaN", b"Infinity", b"-inf", b",", b'"', b"{", b"[", b"\n", b"1e999", b"\x00" * 4, b"\xff" * 4]


@fuzz("files")
@given(st.sampled_from(sorted(RUN_SEEDS)).flatmap(lambda n: st.tuples(st.just(n), mutated(RUN_SEEDS[n], RUN_PIECES))))
def test_fuzz_framework_runs(case):
    from nandoctor.runs import diagnose_run

    name, data = case
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp, name)
        p.write_bytes(data)
        survives(diagnose_run, p)
