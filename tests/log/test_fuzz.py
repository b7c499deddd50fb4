"""Arbitrary bytes never make the parser, the symptoms or the rules raise."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.log.parser import parse_log
from nandoctor.log.symptoms import symptoms
from tests.log.conftest import FIXTURES

SAMPLE = (FIXTURES / "glog_year.log").read_bytes() + (FIXTURES / "debug_info.log").read_bytes()
PIECES = [line + b"\n" for line in SAMPLE.split(b"\n")] + [
    b"\x1f\x8b", b"> ", b"```\n", b"\r\n", b"nan", b"-1.#IND", b"Iteration ", b"] Layer ", b"\xff\xfe", b"{", b"}",
    b"Initializing solver from parameters:\n", b"*** SIGFPE ", b"loss = ", b"lr = ",
]  # fmt: skip


def check(data: bytes) -> None:
    stream = io.BytesIO(data)
    stream.name = "fuzz.log"
    trace = parse_log(stream)
    symptoms(trace)
    list(run_rules(Facts(trace=trace), [c for c in select_rules(["NAN3", "NAN5"])]))
    for doc in [s.solver for s in trace.segments if s.solver] + [n for s in trace.segments for n in s.nets]:
        _ = doc.root, doc.error


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes(data):
    check(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.binary(max_size=40))
def test_shuffled_real_lines(pieces, noise):
    check(b"".join(pieces) + noise)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=len(SAMPLE)), st.binary(max_size=20))
def test_corrupted_sample(cut, junk):
    check(SAMPLE[:cut] + junk + SAMPLE[cut:])
