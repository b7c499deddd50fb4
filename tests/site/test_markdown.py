"""Rule docstrings made safe for Python-Markdown: what would vanish or turn into emphasis is escaped,
code spans stay as written, and rule codes become links."""

from __future__ import annotations

import pytest
from tools.site.markdown import code_span, fence, prose

markdown = pytest.importorskip("markdown", reason="Python-Markdown comes with mkdocs (the test extra)")


def link(code: str) -> str | None:
    return f"{code}.md" if code in {"NAN212"} else None


def rendered(text: str) -> str:
    return markdown.markdown(prose(text, link), extensions=["fenced_code"])


def test_text_that_would_vanish_or_turn_into_emphasis_is_escaped():
    assert rendered("bundle nan-step<N>-rank<R> of channels*height*width") == (
        "<p>bundle nan-step&lt;N&gt;-rank&lt;R&gt; of channels*height*width</p>"
    )
    assert rendered("makes the solver *maximise* that") == "<p>makes the solver <em>maximise</em> that</p>"


def test_code_spans_are_kept_and_codes_linked_outside_them():
    assert rendered("Caffe's ``delta <= 0``, NAN212, as `x*y*z`; NAN999 has no page") == (
        '<p>Caffe\'s <code>delta &lt;= 0</code>, <a href="NAN212.md">NAN212</a>, as <code>x*y*z</code>; '
        "NAN999 has no page</p>"
    )


@pytest.mark.parametrize("text", ["plain", "a ` tick", "``double``", "`edge"])
def test_a_code_span_holds_any_text(text):
    assert markdown.markdown(code_span(text)) == f"<p><code>{text}</code></p>"


def test_a_fence_is_not_closed_by_backticks_inside():
    body = "```\ninside\n```\n"
    assert markdown.markdown(fence(body), extensions=["fenced_code"]) == (
        '<pre><code class="language-text">```\ninside\n```\n</code></pre>'
    )
