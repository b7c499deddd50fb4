"""ImageData lists: missing, truncated, zero-sized and odd lines, colour, duplicates, clean list."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nandoctor.data.api import scan_source, source_spec
from nandoctor.data.clean import clean_copy
from nandoctor.data.scan import scan_specs
from nandoctor.data.scan_list import parse_line
from tests.data.builders import image_bytes


def test_parse_line_like_caffe():
    assert parse_line("my cat.jpg 3\n") == ("my cat.jpg", 3, None)
    assert parse_line("a.jpg 3\r\n")[:2] == ("a.jpg", 3)
    path, label, problem = parse_line("a.jpg cat\n")
    assert (path, label) == ("a.jpg", 0) and "atoi" in problem
    assert parse_line("noslash\n")[2].startswith("no space")
    assert parse_line("\n")[2].startswith("empty line")


def test_image_list_findings(tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    (img / "ok.png").write_bytes(image_bytes("PNG", (6, 4)))
    (img / "ok2.jpg").write_bytes(image_bytes("JPEG", (6, 4), seed=3))
    full = image_bytes("JPEG", (32, 32), seed=4)
    (img / "cut.jpg").write_bytes(full[: len(full) // 3])
    (img / "zero.png").write_bytes(b"")
    (img / "gray.png").write_bytes(image_bytes("PNG", (6, 4), mode="L"))
    (img / "big.png").write_bytes(image_bytes("PNG", (7, 4)))
    lines = [
        "ok.png 0",
        "ok2.jpg 1",
        "cut.jpg 2",
        "zero.png 3",
        "gone.png 4",
        "gray.png 1",
        "big.png 2",
        "ok.png 0",
        "ok2.jpg seven",
        "ok.png 12",
    ]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    spec = source_spec(str(tmp_path / "list.txt"), root=str(tmp_path), batch_size=3, num_classes=10, root_folder="img/")
    report = scan_specs([spec], workers=0, progress=False)
    src = report.sources[0]
    kinds = sorted((i.index, i.kind) for i in src.issues)
    assert kinds == [
        (2, "corrupt"),
        (3, "corrupt"),
        (4, "missing_file"),
        (5, "color"),
        (6, "shape"),
        (7, "duplicate"),
        (8, "duplicate"),
        (8, "list_line"),
        (9, "duplicate"),
        (9, "label"),
    ]
    cut = next(i for i in src.issues if i.index == 2)
    assert "truncated" in cut.message and cut.record == "list.txt:3" and cut.read.iteration == 0
    gone = next(i for i in src.issues if i.kind == "missing_file")
    assert gone.read.iteration == 1 and gone.file == "gone.png"
    result = clean_copy(spec, src, str(tmp_path / "clean.txt"))
    kept = (tmp_path / "clean.txt").read_text().splitlines()
    assert kept == ["ok.png 0", "ok2.jpg 1", "gray.png 1"]  # repeated lines dropped, the first kept
    assert result.kept == 3
    again = scan_source(
        str(tmp_path / "clean.txt"),
        root=str(tmp_path),
        batch_size=3,
        num_classes=10,
        root_folder="img/",
        workers=0,
        progress=False,
    )
    assert {i.kind for i in again.sources[0].issues} == {"color"}


@given(st.text(max_size=40))
def test_fuzz_parse_line_never_raises(line):
    path, label, problem = parse_line(line)
    assert isinstance(label, int)
    text = line.rstrip("\n")
    if " " in text:
        assert path == text[: text.rfind(" ")]
    else:
        assert problem is not None
