"""Edit helpers keep the file's layout: indentation, line endings, trailing comments."""

from __future__ import annotations

from nandoctor.config.edits import apply_edits, insert_field_edit, replace_edit
from nandoctor.config.textformat import parse_text


def _pooling(text):
    doc = parse_text(text)
    return doc, doc.root.get("layer").get("pooling_param")


def test_insert_keeps_crlf_indent_and_trailing_comment():
    text = "layer {\r\n  pooling_param {\r\n    pool: AVE\r\n    stride: 5  # five\r\n  }\r\n}\r\n"
    doc, msg = _pooling(text)
    edit = insert_field_edit(doc, msg, "pad: 1")
    assert apply_edits(text, [edit]) == text.replace("# five\r\n", "# five\r\n    pad: 1\r\n")
    assert (edit.line, edit.col) == (4, 22)


def test_insert_on_one_line_and_into_empty_message():
    text = "layer { pooling_param { pool: AVE stride: 5 } }"
    doc, msg = _pooling(text)
    assert (
        apply_edits(text, [insert_field_edit(doc, msg, "pad: 1")])
        == "layer { pooling_param { pool: AVE stride: 5 pad: 1 } }"
    )
    text = "layer { pooling_param { } }"
    doc, msg = _pooling(text)
    assert (
        parse_text(apply_edits(text, [insert_field_edit(doc, msg, "pad: 1")]))
        .root.get("layer")
        .get("pooling_param")
        .get("pad")
        == 1
    )


def test_replace_touches_only_the_value():
    text = "layer { pooling_param { stride: 5 } }  # stride: 5"
    _, msg = _pooling(text)
    edit = replace_edit("x", msg.last("stride").value, "4")
    assert apply_edits(text, [edit]) == "layer { pooling_param { stride: 4 } }  # stride: 5"
    assert (edit.old, edit.line, edit.col) == ("5", 1, 33)
