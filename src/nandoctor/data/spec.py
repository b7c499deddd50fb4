"""What to scan: a data source plus everything the net says about how it is read and transformed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nandoctor.core.types import InputError
from nandoctor.data.checks import LabelRule, Transform
from nandoctor.data.schedule import ReadSchedule

KINDS = ("lmdb", "leveldb", "hdf5", "hdf5file", "imagelist")
H5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


@dataclass(slots=True)
class SourceSpec:
    kind: str  # lmdb | leveldb | hdf5 (a list file) | hdf5file (one .h5) | imagelist
    path: str  # as resolved for reading
    layer: str | None = None
    phase: str | None = None
    tops: tuple[str, ...] = ("data", "label")
    schedule: ReadSchedule = field(default_factory=lambda: ReadSchedule(None))
    transform: Transform = field(default_factory=Transform)
    labels: LabelRule | None = None  # for the label top, when the net says how it is used
    label_top: str | None = "label"
    cwd: str = "."  # where relative paths inside lists resolve (Caffe: the process CWD)
    root_folder: str = ""  # ImageData root_folder (string-prepended, as Caffe does)
    is_color: bool = True
    resize: tuple[int, int] = (0, 0)  # ImageData new_height, new_width
    force_color: bool = False
    force_gray: bool = False
    declared: str | None = None  # the source string as written in the net
    snapshot: bool = False  # LevelDB: read a copy even if a running job holds its lock
    rescaled_by: str | None = None  # a Power/Scale layer right after the data (HDF5 nets scale this way)
    pre_issues: list = field(default_factory=list)  # Issues found while building the spec (mean file)

    def transform_summary(self) -> dict:
        t = self.transform
        out: dict = {"scale": t.scale}
        if t.mean_source:
            out["mean"] = t.mean_source
            if t.mean_source.startswith("mean_file") and t.mean is not None:
                out["mean_size"] = int(t.mean.size)
        if self.rescaled_by:
            out["rescaled_by"] = self.rescaled_by
        return out


def detect_kind(path: str | Path) -> str:
    """Guess a source's kind from what is on disk (Caffe itself is told by ``backend``/layer type)."""
    p = Path(path)
    if p.is_dir():
        if (p / "data.mdb").exists():
            from nandoctor.core.safeio import check_input

            check_input(p / "data.mdb", "an LMDB data.mdb")  # a FIFO there would block lmdb's open
            return "lmdb"
        if (p / "CURRENT").exists() or any(p.glob("*.ldb")) or any(p.glob("*.sst")):
            return "leveldb"
        raise InputError("directory is neither an LMDB (data.mdb) nor a LevelDB (CURRENT)", str(path))
    if not p.exists():
        raise InputError("data source not found", str(path))
    from nandoctor.core.safeio import check_input, open_input

    check_input(p, "a data source")  # a FIFO, a device, a socket: no library is handed it
    if p.suffix.lower() in H5_SUFFIXES:
        return "hdf5file"

    try:
        with open_input(p, "a data source") as fh:
            head = fh.read(8)
            fh.seek(0)
            lines = [ln for ln in (fh.readline() for _ in range(20)) if ln.strip()]
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", str(path)) from None
    if head.startswith(b"\x89HDF"):
        return "hdf5file"
    suffixes = tuple(x.encode() for x in H5_SUFFIXES)
    if lines and all(ln.split()[0].lower().endswith(suffixes) for ln in lines if ln.split()):
        return "hdf5"
    if lines and b"\0" in b"".join(lines):
        raise InputError("binary file: not an LMDB/LevelDB directory, HDF5 file or list file", str(path))
    return "imagelist"
