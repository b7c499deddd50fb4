"""Fixes are exact edits applied to copies; originals are never touched."""

from __future__ import annotations

import pytest

from nandoctor.config.edits import apply_edits
from nandoctor.core.types import Edit, InputError
from nandoctor.fixes import patch_files, write_fixes

TEXT = 'base_lr: 0.01\nlr_policy: "poly"  # keep this comment\npower: 0.9\n'


def test_apply_replaces_exact_span_and_keeps_comments():
    start = TEXT.index("0.01")
    edit = Edit("s.prototxt", start, start + 4, "0.01", "0.001")
    insert = Edit("s.prototxt", len(TEXT), len(TEXT), "", "max_iter: 20000\n")
    out = apply_edits(TEXT, [insert, edit])
    assert out == 'base_lr: 0.001\nlr_policy: "poly"  # keep this comment\npower: 0.9\nmax_iter: 20000\n'


def test_apply_refuses_stale_or_overlapping_edits():
    with pytest.raises(ValueError, match="expected"):
        apply_edits(TEXT, [Edit("s", 0, 4, "nope", "x")])
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits(TEXT, [Edit("s", 0, 7, "base_lr", "x"), Edit("s", 2, 4, "se", "y")])


def test_write_fixes_leaves_original_untouched(tmp_path):
    src = tmp_path / "in" / "solver.prototxt"
    src.parent.mkdir()
    src.write_text(TEXT)
    start = TEXT.index("0.9")
    written = write_fixes([Edit(str(src), start, start + 3, "0.9", "1.0")], tmp_path / "out")
    assert src.read_text() == TEXT
    names = sorted(p.name for p in written)
    assert names == ["fix.diff", "solver.prototxt"]
    assert "power: 1.0" in (tmp_path / "out" / "solver.prototxt").read_text()
    diff = (tmp_path / "out" / "fix.diff").read_text()
    assert "-power: 0.9" in diff and "+power: 1.0" in diff


def test_write_fixes_refuses_to_overwrite_inputs(tmp_path):
    src = tmp_path / "solver.prototxt"
    src.write_text(TEXT)
    with pytest.raises(InputError):
        write_fixes([Edit(str(src), 0, 7, "base_lr", "base_lr")], tmp_path)


def test_conflicting_edits_first_wins(tmp_path):
    src = tmp_path / "a.prototxt"
    src.write_text(TEXT)
    start = TEXT.index("0.01")
    [pf] = patch_files(
        [Edit(str(src), start, start + 4, "0.01", "0.001"), Edit(str(src), start, start + 4, "0.01", "0.1")]
    )
    assert "base_lr: 0.001" in pf.patched
