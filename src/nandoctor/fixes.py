"""Apply a finding's exact edits to copies of the files, and show them as a unified diff.

The user's files are never written: patched copies go to an output folder under
the same base names, with one ``fix.diff`` beside them (through ``core.safeio.OutputDir``:
no symlink there is followed, no input replaced). Bytes outside the edits are copied as
they are, so a comment in Latin-1 stays Latin-1 in the copy and in the diff.
"""

from __future__ import annotations

import bisect
import codecs
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nandoctor.config.edits import apply_edits
from nandoctor.core.safeio import OutputDir, read_input
from nandoctor.core.types import Edit, InputError

MAX_PATCHED_FILE = 64 << 20  # bytes; a config file to patch, far above any real prototxt


@dataclass
class PatchedFile:
    source: Path
    original: str
    patched: str
    edits: list[Edit]
    original_bytes: bytes = b""
    patched_bytes: bytes = field(default=b"", repr=False)

    def diff(self, new_name: str | None = None) -> str:
        """The unified diff; undecodable bytes are surrogate escapes (write it with ``errors="surrogateescape"``)."""
        before = self.original_bytes.decode("utf-8", "surrogateescape") if self.original_bytes else self.original
        after = self.patched_bytes.decode("utf-8", "surrogateescape") if self.patched_bytes else self.patched
        return "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile=str(self.source),
                tofile=new_name or str(self.source),
            )
        )


_RUNS: list[tuple[int, int]] = []


def _track(exc: UnicodeDecodeError) -> tuple[str, int]:
    _RUNS.append((exc.start, exc.end))
    return "\ufffd", exc.end


codecs.register_error("nandoctor-track-replace", _track)


class _ByteMap:
    """Character offsets of ``data.decode("utf-8", "replace")`` (what the parser read) to byte offsets.

    Each maximal invalid byte run became one U+FFFD; everything else is UTF-8.
    """

    def __init__(self, data: bytes):
        _RUNS.clear()
        self.text = data.decode("utf-8", "nandoctor-track-replace")
        runs = list(_RUNS)
        _RUNS.clear()
        self.data = data
        self.chars: list[int] = []  # piece starts, in characters
        self.pieces: list[tuple[int, int, bool]] = []  # (byte start, byte end, is an invalid run)
        char = byte = 0
        for start, end in runs:
            if start > byte:
                self.chars.append(char)
                self.pieces.append((byte, start, False))
                char += len(data[byte:start].decode("utf-8"))
            self.chars.append(char)
            self.pieces.append((start, end, True))
            char += 1
            byte = end
        self.chars.append(char)
        self.pieces.append((byte, len(data), False))

    def byte(self, char: int) -> int:
        i = bisect.bisect_right(self.chars, char) - 1
        start, end, run = self.pieces[i]
        within = char - self.chars[i]
        if run:
            return start if within == 0 else end
        return start + len(self.text[self.chars[i] : char].encode("utf-8"))


def _patch_bytes(data: bytes, edits: list[Edit]) -> bytes:
    """``data`` with the edits (character offsets of its replace-decoded text); other bytes untouched."""
    unique = sorted({(e.start, e.end, e.old, e.new): e for e in edits}.values(), key=lambda e: (e.start, e.end))
    where = _ByteMap(data)
    out: list[bytes] = []
    cursor = 0
    for e in unique:
        start, end = where.byte(e.start), where.byte(e.end)
        out.append(data[cursor:start])
        out.append(e.new.encode("utf-8"))
        cursor = end
    out.append(data[cursor:])
    return b"".join(out)


def patch_files(edits: Iterable[Edit]) -> list[PatchedFile]:
    """Group edits by file and apply them to the file's current text; overlapping edits keep the first."""
    by_path: dict[str, list[Edit]] = {}
    for e in edits:
        by_path.setdefault(e.path, []).append(e)
    patched = []
    for path, group in by_path.items():
        src = Path(path)
        data = read_input(src, "a file to patch", MAX_PATCHED_FILE)
        text = data.decode("utf-8", errors="replace")
        kept: list[Edit] = []
        for e in sorted(group, key=lambda e: (e.start, e.end)):
            if (
                kept
                and e.start < kept[-1].end
                and (e.start, e.end, e.new) != (kept[-1].start, kept[-1].end, kept[-1].new)
            ):
                continue  # two fixes touch the same text: the first (highest-ranked) wins
            kept.append(e)
        new_text = apply_edits(text, kept)
        patched.append(PatchedFile(src, text, new_text, kept, data, _patch_bytes(data, kept)))
    return patched


def write_fixes(edits: Iterable[Edit], out_dir: str | Path) -> list[Path]:
    """Write patched copies and ``fix.diff`` into ``out_dir``; returns the files written."""
    files = patch_files(edits)
    if not files:
        return []
    out = OutputDir(out_dir, [pf.source for pf in files], what="--fix folder")
    for pf in files:
        if pf.source.resolve().parent == out.real:
            raise InputError(
                "the --fix folder must not be the folder of the inputs (originals are never overwritten)", str(out.path)
            )
    written: list[Path] = []
    diffs: list[str] = []
    used: set[str] = set()
    for pf in files:
        name = pf.source.name
        if name in used:  # two inputs with one base name: keep both apart
            name = f"{pf.source.parent.name}_{name}"
        used.add(name)
        target = out.write_bytes(name, pf.patched_bytes)
        written.append(target)
        diffs.append(pf.diff(str(target)))
    written.append(out.write_text("fix.diff", "".join(diffs), errors="surrogateescape"))
    return written
