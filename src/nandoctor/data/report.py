"""What a data scan learned: one :class:`SourceReport` per data source, gathered in a :class:`DataReport`.

Scanners record *observations* (:class:`Issue`); the NAN4xx rules turn them into findings
with severities and fixes. Reports are plain data that round-trip through JSON, so shard
reports written on different machines can be merged (:func:`merge_reports`).

Issue kinds (``Issue.kind``):

=================  ======================================================================
nonfinite          NaN/+inf/-inf in a record (counts, first positions), as the net sees it
overflow           finite values whose magnitude (after transform_param) exceeds the threshold
shape              a record whose shape differs from the data set's majority shape
empty              a record with no values at all
constant           every value of a record is equal (suspicious, not poisonous)
corrupt            undecodable Datum, truncated/undecodable image, unreadable HDF5 dataset
label              label not an integer, negative, or >= number of classes
duplicate          a path listed twice in an HDF5 source list or an image list
missing_file       an HDF5 file or image named in a list that does not exist
unreadable_source  the source itself cannot be opened (missing, locked, corrupt DB)
mean_file          the mean_file binaryproto is unreadable, non-finite or of the wrong size
missing_scale      0..255 data reaching the net unscaled
list_line          a list line Caffe would misread (no label, non-numeric label)
color              image colour/gray disagrees with is_color (Caffe converts; informational)
=================  ======================================================================
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nandoctor.core.types import InputError
from nandoctor.data.schedule import Read, ReadSchedule

MAX_POSITIONS = 8  # first positions kept per non-finite record


@dataclass(slots=True)
class Issue:
    kind: str
    message: str
    record: str | None = None  # DB key, or "file.h5:data[420]", or "list.txt:17"
    index: int | None = None  # ordinal in Caffe's read order (None if not a record)
    file: str | None = None  # HDF5 file / image path the record lives in
    row: int | None = None  # row inside that file / line in the list
    top: str | None = None  # dataset or top the values belong to
    detail: dict[str, Any] = field(default_factory=dict)
    read: Read | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v not in (None, {}, "")}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Issue:
        d = dict(d)
        if d.get("read") is not None:
            d["read"] = Read(**d["read"])
        return cls(**d)


@dataclass(slots=True)
class SourceReport:
    """Everything found in one data source (or one shard of it)."""

    kind: str  # lmdb | leveldb | hdf5 | imagelist | mean_file
    path: str
    layer: str | None = None
    phase: str | None = None
    tops: list[str] = field(default_factory=list)
    batch_size: int | None = None
    records: int = 0  # records scanned
    total: int | None = None  # records the source holds (if known)
    bytes: int = 0
    shapes: dict[str, int] = field(default_factory=dict)  # "C,H,W" -> count
    value_min: float | None = None  # finite extremes as the net sees them
    value_max: float | None = None
    raw_min: float | None = None  # finite extremes as stored
    raw_max: float | None = None
    value_kind: str | None = None  # uint8 | float | encoded | image
    files: list[str] = field(default_factory=list)  # HDF5 files / the list file
    issues: list[Issue] = field(default_factory=list)
    complete: bool = True  # False when interrupted
    shard: str | None = None  # "i/n" for a shard report
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    schedule: dict[str, Any] = field(default_factory=dict)  # how iterations were computed
    # per shape, the first records having it: [index, key/record] (capped), so shards can be merged
    shape_examples: dict[str, list[list[Any]]] = field(default_factory=dict)
    majority_shape: str | None = None
    # transform_param as applied: {"scale": s, "mean": "mean_file ..."/"mean_value ...", "rescaled_by": layer}
    transform: dict[str, Any] = field(default_factory=dict)

    @property
    def bad_records(self) -> list[Issue]:
        """Issues that make a record unfit for training (what a clean copy leaves out)."""
        return [i for i in self.issues if i.index is not None and i.kind in BAD_KINDS]

    def bad_indices(self) -> set[int]:
        return {i.index for i in self.bad_records if i.index is not None}

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__ if k != "issues"}
        out["issues"] = [i.to_dict() for i in self.issues]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceReport:
        d = dict(d)
        issues = [Issue.from_dict(i) for i in d.pop("issues", [])]
        known = {k: v for k, v in d.items() if k in cls.__slots__}
        return cls(**known, issues=issues)


# issues that condemn a record (a clean copy drops it)
BAD_KINDS = frozenset({"nonfinite", "overflow", "shape", "empty", "corrupt", "label", "missing_file"})


@dataclass(slots=True)
class DataReport:
    """All sources scanned for one net (or one list of sources)."""

    sources: list[SourceReport] = field(default_factory=list)
    interrupted: bool = False

    @property
    def issues(self) -> list[tuple[SourceReport, Issue]]:
        return [(s, i) for s in self.sources for i in s.issues]

    def to_dict(self) -> dict[str, Any]:
        return {"interrupted": self.interrupted, "sources": [s.to_dict() for s in self.sources]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataReport:
        return cls([SourceReport.from_dict(s) for s in d.get("sources", [])], bool(d.get("interrupted")))

    def save(self, path: str | Path, inputs=()) -> None:
        from nandoctor.core.safeio import write_file

        write_file(path, json.dumps(self.to_dict(), indent=1), [*inputs, *(s.path for s in self.sources)],
                   what="report")  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> DataReport:
        try:
            from nandoctor.core.safeio import read_input

            return cls.from_dict(json.loads(read_input(path, "a data report", 1 << 30)))
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError, ValueError, RecursionError) as exc:
            raise InputError(f"not a nandoctor data report: {exc}", str(path)) from None


def merge_sources(parts: list[SourceReport]) -> SourceReport:
    """Combine shard reports of one source: counts add up, issues concatenate in read order.

    Shape outliers can only be judged on the whole set, so shard reports keep per-shape
    counts and the merged report re-judges which shape is the majority.
    """
    first = parts[0]
    out = SourceReport(
        kind=first.kind,
        path=first.path,
        layer=first.layer,
        phase=first.phase,
        tops=list(first.tops),
        batch_size=first.batch_size,
        total=first.total,
        value_kind=first.value_kind,
        files=list(first.files),
        schedule=dict(first.schedule),
        transform=dict(first.transform),
    )
    examples: dict[str, list[list[Any]]] = {}
    shapes: Counter[str] = Counter()
    for p in parts:
        out.records += p.records
        out.bytes += p.bytes
        out.seconds = max(out.seconds, p.seconds)
        out.complete &= p.complete
        shapes.update(p.shapes)
        for attr, pick in (("value_min", min), ("value_max", max), ("raw_min", min), ("raw_max", max)):
            a, b = getattr(out, attr), getattr(p, attr)
            setattr(out, attr, b if a is None else a if b is None else pick(a, b))
        out.issues.extend(p.issues)
        for shape, rows in p.shape_examples.items():
            examples.setdefault(shape, []).extend(rows)
        for n in p.notes:
            if n not in out.notes:
                out.notes.append(n)
        for f in p.files:
            if f not in out.files:
                out.files.append(f)
    out.shapes = dict(shapes)
    out.shape_examples = examples
    out.issues.sort(key=lambda i: (i.index is None, i.index if i.index is not None else 0, i.kind))
    return out


def merge_reports(reports: list[DataReport]) -> DataReport:
    """Merge shard reports: sources with the same (kind, path, layer, phase) are combined."""
    groups: dict[tuple, list[SourceReport]] = {}
    for r in reports:
        for s in r.sources:
            groups.setdefault((s.kind, s.path, s.layer, s.phase), []).append(s)
    merged = []
    for parts in groups.values():
        src = merge_sources(parts)
        if src.shape_examples:  # DB and list shapes are judged against the majority
            src.issues = [i for i in src.issues if i.kind != "shape"]
            judge_shapes(src)
        merged.append(src)
    return DataReport(merged, any(r.interrupted for r in reports))


def record_name(ref: Any) -> str:
    if isinstance(ref, tuple):
        return ref[0]
    return ref if isinstance(ref, str) else str(ref)


def judge_shapes(src: SourceReport) -> None:
    """Mark records whose shape differs from the majority (the shape the net was built for)."""
    if not src.shapes:
        return
    majority = max(src.shapes.items(), key=lambda kv: (kv[1], kv[0]))[0]
    src.majority_shape = majority
    for shape, count in src.shapes.items():
        if shape == majority:
            continue
        examples = src.shape_examples.get(shape, [])
        schedule = ReadSchedule(**src.schedule) if src.schedule else ReadSchedule(None)
        for index, ref in examples:
            src.issues.append(
                Issue(
                    "shape",
                    f"shape {shape} differs from the {src.shapes[majority]} records of shape {majority}",
                    record=record_name(ref),
                    index=int(index),
                    read=schedule.first_read(int(index)),
                    detail={"shape": shape, "expected": majority},
                )
            )
        if count > len(examples):
            src.notes.append(f"{count} records have shape {shape}; only the first {len(examples)} are listed")
    src.issues.sort(key=lambda i: (i.index is None, i.index if i.index is not None else 0, i.kind))
