"""Findings as text: piped output is written straight to the stream, and reads exactly as rich prints it.

The reference is rich itself printing the same styled lines on the plain console the CLI
makes when stdout is not a terminal (control codes stripped, tabs expanded by cell width).
"""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text

from nandoctor.core.types import Cause, Edit, Evidence, Finding, Fix, Location, Severity
from nandoctor.report.console import make_console
from nandoctor.report.findings_text import finding_lines, render_finding, render_findings

# text a log or a prototxt can put in a message: markup look-alikes, control codes, tabs, wide characters
ODD = st.sampled_from(
    ["[bold]", "[/]", "\\", "\t", "\r", "\x07", "\x1b[31m", "\x0c", "世界", "é", " ", "\n", ":smile:"]
)
text = st.lists(ODD | st.text(max_size=6), max_size=8).map("".join)


@st.composite
def findings(draw):
    loc = draw(st.none() | st.builds(Location, text, st.integers(1, 99), st.none() | st.integers(1, 9)))
    evidence = draw(st.lists(st.builds(Evidence, text, st.none() | st.builds(Location, text, st.integers(1, 9))),
                             max_size=3))  # fmt: skip
    edit = st.builds(Edit, text, st.just(0), st.just(0), text, text, st.none() | st.integers(1, 5), st.integers(1, 5))
    fix = draw(st.none() | st.builds(Fix, text, st.lists(edit, max_size=2).map(tuple)))
    return Finding(draw(st.sampled_from(["NAN300", "NAN500"])), draw(st.sampled_from(list(Severity))),
                   draw(st.sampled_from(list(Cause))), draw(text), loc, tuple(evidence), fix)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(findings(), max_size=4), st.sampled_from(["", "  "]))
def test_piped_findings_read_exactly_as_rich_prints_them(fs, indent):
    ours, theirs = io.StringIO(), io.StringIO()
    a, b = make_console(ours), make_console(theirs)
    for f in fs:
        render_finding(a, f, indent)
        for runs in finding_lines(f, indent):
            b.print(Text.assemble(*runs))
    assert ours.getvalue() == theirs.getvalue()


def test_text_is_printed_as_it_is():
    """Markup look-alikes and a trailing backslash (which rich markup used to double) come out verbatim."""
    out = io.StringIO()
    f = Finding("NAN300", Severity.ERROR, Cause.LOSS_FUNCTION, "[bold]x[/bold] \\", None, (Evidence("a\\"),))
    render_finding(make_console(out), f)
    assert out.getvalue() == "NAN300 error [bold]x[/bold] \\ (loss_function)\n    evidence: a\\\n"


def test_summary_line_after_the_findings():
    out = io.StringIO()
    f = Finding("NAN300", Severity.ERROR, Cause.GRADIENT_EXPLOSION, "loss is nan", Location("train.log", 7))
    render_findings(make_console(out), [f, f])
    assert out.getvalue().splitlines() == [
        "train.log:7: NAN300 error loss is nan (gradient_explosion)",
        "train.log:7: NAN300 error loss is nan (gradient_explosion)",
        "Found 2: 2 errors.",
    ]
