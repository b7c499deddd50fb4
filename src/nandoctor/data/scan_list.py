"""ImageData list files: ``path label`` per line, images loaded from root_folder + path.

Caffe (since rc4) splits each line at the **last** space and reads the label with ``atoi``
(non-numeric -> 0, no error); a line without a space becomes a path with label 0, an empty
line a path of "" (``Could not load``). Images are read with ``cv::imread`` as colour unless
``is_color: false``, resized when new_height/new_width are set, in list order.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator

import numpy as np

from nandoctor.core.safeio import MB, open_input, read_input
from nandoctor.core.types import InputError
from nandoctor.data.checks import Accumulator
from nandoctor.data.images import decode_image
from nandoctor.data.report import SourceReport
from nandoctor.data.spec import SourceSpec

# C's atoi: C-locale whitespace and ASCII digits only (a str regex's \s and \d are Unicode);
# a label beyond 40 digits is no label anyway, and int() refuses thousands of digits
_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]{1,40}")


# an encoded image (a JPEG/PNG of a few MB at most); a larger entry is no image Caffe could load
MAX_IMAGE_BYTES = 256 * MB


def parse_line(line: str) -> tuple[str, int, str | None]:
    """(path, label, problem) exactly as Caffe's ImageDataLayer reads a line."""
    text = line.rstrip("\n")
    pos = text.rfind(" ")
    if pos < 0:
        path, label_text = text, text
        problem = (
            "empty line: Caffe loads root_folder itself and fails"
            if not text.strip()
            else "no space: the whole line is taken as the path and the label becomes atoi(line)"
        )
    else:
        path, label_text = text[:pos], text[pos + 1 :]
        problem = None
    m = _INT.match(label_text)
    label = int(m.group()) if m else 0
    if m is None and problem is None:
        problem = f"label {label_text.strip()!r} is not a number: Caffe's atoi makes it 0"
    return path, label, problem


def iter_lines(path: str, start: int = 0, count: int | None = None) -> Iterator[tuple[int, str]]:
    from itertools import islice

    # a regular file only: a FIFO would block here forever
    with io.TextIOWrapper(open_input(path, "an image list"), encoding="utf-8", errors="surrogateescape",
                          newline="\n") as fh:  # fmt: skip
        lines = islice(fh, start, None if count is None else start + count)
        yield from enumerate(lines, start)


def plan_list(spec: SourceSpec) -> tuple[int, list[tuple]]:
    """Count lines and find duplicated paths (hashes first, so memory stays small)."""
    from nandoctor.data.db import SourceError

    hashes = []
    try:
        for _i, line in iter_lines(spec.path):
            hashes.append(hash(parse_line(line)[0]))
    except InputError as exc:
        if not os.path.exists(spec.path):
            raise SourceError("image list not found", spec.path) from None
        raise SourceError(f"image list: {exc.message}", spec.path) from None
    except OSError as exc:
        raise SourceError(f"cannot read image list: {exc.strerror}", spec.path) from None
    issues: list[tuple] = []
    if not hashes:
        issues.append(("unreadable_source", "image list is empty", None, None, None))
        return 0, issues
    h = np.array(hashes, dtype=np.int64)
    order = np.argsort(h, kind="stable")
    same = np.flatnonzero(h[order][1:] == h[order][:-1])
    if same.size:
        suspects = set(order[same].tolist()) | set(order[same + 1].tolist())
        first: dict[str, int] = {}
        for i, line in iter_lines(spec.path):
            if i not in suspects:
                continue
            path = parse_line(line)[0]
            if path in first:
                issues.append(("duplicate", f"{path} already listed on line {first[path] + 1}", path, i + 1, i))
            else:
                first[path] = i
    return len(hashes), issues


def scan_list_range(
    spec: SourceSpec, start: int, count: int, total: int, ticker, shard: str | None = None
) -> SourceReport:
    report = SourceReport(
        kind="imagelist",
        path=spec.path,
        layer=spec.layer,
        phase=spec.phase,
        tops=list(spec.tops),
        batch_size=spec.schedule.batch_size,
        total=total,
        shard=shard,
        schedule=spec.schedule.to_dict(),
        files=[spec.path],
        value_kind="image",
    )
    acc = Accumulator(report, spec.schedule, spec.transform, spec.labels)
    t0 = time.perf_counter()
    name = os.path.basename(spec.path)
    pending = 0
    for i, line in iter_lines(spec.path, start, count):
        path, label, problem = parse_line(line)
        ref = (f"{name}:{i + 1}", path, i + 1)
        report.records += 1
        pending += 1
        if pending >= 64:
            if ticker.add(pending):
                report.complete = False
                break
            pending = 0
        if problem is not None:
            kind = "corrupt" if problem.startswith("empty") else "list_line"
            acc.issue(kind, problem, i, ref)
            if kind == "corrupt":
                continue
        _check_image(acc, spec, path, label, i, ref)
    else:
        ticker.add(pending)
    acc.finish()
    report.seconds = time.perf_counter() - t0
    return report


def image_path(spec: SourceSpec, path: str) -> str:
    """root_folder is string-prepended (no separator added), then resolved from the run directory."""
    full = spec.root_folder + path
    return full if os.path.isabs(full) else os.path.join(spec.cwd, full)


def _check_image(acc: Accumulator, spec: SourceSpec, path: str, label: int, i: int, ref) -> None:
    full = image_path(spec, path)
    try:
        data = read_input(full, "an image", MAX_IMAGE_BYTES)
    except InputError as exc:
        if not os.path.lexists(full) or not os.path.exists(full):
            acc.issue(
                "missing_file", f"image not found: {full} (Caffe: Could not load {spec.root_folder}{path})", i, ref
            )
        else:  # a FIFO, a device, a folder or an image too large to be one
            acc.issue("missing_file", f"cannot read image {full}: {exc.message}", i, ref)
        return
    acc.report.bytes += len(data)
    dec = decode_image(data, spec.is_color)
    if dec.pixels is None:
        acc.issue("corrupt", f"{dec.error}: {full}", i, ref)
        return
    if (dec.channels_in_file == 1) == spec.is_color:
        stored = "gray" if dec.channels_in_file == 1 else "colour"
        acc.issue(
            "color",
            f"{stored} image read with is_color: {str(spec.is_color).lower()} (Caffe converts it)",
            i,
            ref,
            detail={"stored": stored},
        )
    pixels = dec.pixels
    idx = np.array([i])
    h, w = spec.resize
    shape = (pixels.shape[0], h, w) if h > 0 and w > 0 else pixels.shape
    acc.shape(tuple(shape), idx, [ref])
    acc.values(pixels.reshape(1, -1), idx, [ref], top=spec.tops[0] if spec.tops else None)
    acc.label_values(np.array([label]), idx, [ref])
