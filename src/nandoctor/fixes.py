"""Apply a finding's exact edits to copies of the files, and show them as a unified diff.

The user's files are never written: patched copies go to an output folder under
the same base names, with one ``fix.diff`` beside them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nandoctor.core.types import Edit, InputError


@dataclass
class PatchedFile:
    source: Path
    original: str
    patched: str
    edits: list[Edit]

    def diff(self, new_name: str | None = None) -> str:
        return "".join(
            difflib.unified_diff(
                self.original.splitlines(keepends=True),
                self.patched.splitlines(keepends=True),
                fromfile=str(self.source),
                tofile=new_name or str(self.source),
            )
        )


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits (by character offsets of ``text``); identical duplicates count once."""
    unique = sorted({(e.start, e.end, e.old, e.new): e for e in edits}.values(), key=lambda e: (e.start, e.end))
    out: list[str] = []
    cursor = 0
    for e in unique:
        if e.start < cursor:
            raise ValueError(f"overlapping edits at offset {e.start} in {e.path}")
        if text[e.start : e.end] != e.old:
            raise ValueError(
                f"edit at offset {e.start} of {e.path} expected {e.old!r}, found {text[e.start : e.end]!r}"
            )
        out.append(text[cursor : e.start])
        out.append(e.new)
        cursor = e.end
    out.append(text[cursor:])
    return "".join(out)


def patch_files(edits: Iterable[Edit]) -> list[PatchedFile]:
    """Group edits by file and apply them to the file's current text; overlapping edits keep the first."""
    by_path: dict[str, list[Edit]] = {}
    for e in edits:
        by_path.setdefault(e.path, []).append(e)
    patched = []
    for path, group in by_path.items():
        src = Path(path)
        try:
            text = src.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read file to patch: {exc.strerror}", path) from None
        kept: list[Edit] = []
        for e in sorted(group, key=lambda e: (e.start, e.end)):
            if (
                kept
                and e.start < kept[-1].end
                and (e.start, e.end, e.new) != (kept[-1].start, kept[-1].end, kept[-1].new)
            ):
                continue  # two fixes touch the same text: the first (highest-ranked) wins
            kept.append(e)
        patched.append(PatchedFile(src, text, apply_edits(text, kept), kept))
    return patched


def write_fixes(edits: Iterable[Edit], out_dir: str | Path) -> list[Path]:
    """Write patched copies and ``fix.diff`` into ``out_dir``; returns the files written."""
    out = Path(out_dir)
    files = patch_files(edits)
    if not files:
        return []
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    diffs: list[str] = []
    used: set[str] = set()
    for pf in files:
        if pf.source.resolve().parent == out.resolve():
            raise InputError(
                "the --fix folder must not be the folder of the inputs (originals are never overwritten)", str(out)
            )
        name = pf.source.name
        if name in used:  # two inputs with one base name: keep both apart
            name = f"{pf.source.parent.name}_{name}"
        used.add(name)
        target = out / name
        target.write_text(pf.patched, encoding="utf-8")
        written.append(target)
        diffs.append(pf.diff(str(target)))
    diff_path = out / "fix.diff"
    diff_path.write_text("".join(diffs), encoding="utf-8")
    written.append(diff_path)
    return written
