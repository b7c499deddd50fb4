"""Log rules about test passes, fatal checks and crashes (NAN330-NAN341)."""

from __future__ import annotations

from nandoctor.core.registry import register
from nandoctor.core.types import Cause, Severity
from nandoctor.core.votes import STRONG, Signal
from nandoctor.log import symptoms as S
from nandoctor.rules.log.common import SymptomRule


@register
class TestNonFinite(SymptomRule):
    """
    ## What it detects
    The first test pass (``Iteration N, Testing net (#i)``) with a non-finite
    ``Test net output`` or ``Test loss``; ``data["before_train"]`` says whether it
    came before the training loss showed it.

    ## Why it leads to NaN
    Test outputs use the current weights: a nan there means the weights (or the test
    data) are broken. An accuracy of exactly 1 next to a nan loss is a comparison
    with nan scores, not a good model.

    ## How to fix
    Follow the training findings; if only the test net is affected, scan the test
    data source.

    ## Example
    ``Test net output #1: loss = nan (* 1 = nan loss)`` with ``accuracy = 1``.
    """

    code = "NAN330"
    title = "Test net output becomes non-finite"
    severity = Severity.ERROR
    detector = S.detect_test_nonfinite
    kinds = ("test_nonfinite",)

    def votes(self, finding, ctx):
        return ()  # the NaN itself; what made it is told by the other findings


@register
class CheckFailed(SymptomRule):
    """
    ## What it detects
    A fatal glog line (``F...``), usually ``Check failed: ...``, that ended the run;
    solver-parameter checks (stepsize, gamma, lr policy) are blamed on the lr policy.

    ## Why it leads to NaN
    Newer Caffe refuses lr settings that would divide by zero or produce nan/negative
    rates (``stepsize > 0``, ``gamma >= 0``): the run dies instead of going NaN.
    Older builds accept them and crash with SIGFPE or train on a nan lr.

    ## How to fix
    Set the parameter the message names (e.g. ``stepsize`` for ``lr_policy: "step"``).

    ## Example
    ``F... sgd_solver.cpp:33] Check failed: this->param_.stepsize() > 0 (0 vs. 0)``.
    """

    code = "NAN340"
    title = "Caffe stopped on a failed check"
    severity = Severity.ERROR
    detector = S.detect_check_failed
    kinds = ("check_failed",)

    def votes(self, finding, ctx):
        if finding.cause is Cause.UNKNOWN:
            return ()
        # Caffe refused the configuration: the check names the field
        return [Signal(finding.cause, STRONG, finding.message, finding, finding.culprit, 9)]


@register
class Crash(SymptomRule):
    """
    ## What it detects
    Crash output: glog's ``*** Aborted at`` / ``*** SIGFPE|SIGSEGV|SIGABRT`` lines,
    glibc's ``double free or corruption`` and shell messages such as
    ``Floating point exception``.

    ## Why it leads to NaN
    A SIGFPE at the first update with ``lr_policy: "step"`` is the integer division
    by an unset ``stepsize`` in Caffe <= 1.0. Heap corruption after a NaN is typical of
    MAX pooling over nan inputs (the argmax mask stays -1 and backward writes outside
    the buffer): the crash is a consequence of the NaN, not its cause.

    ## How to fix
    Set ``stepsize`` for step/sigmoid policies; otherwise fix the NaN (see the other
    findings) and the crash goes away.

    ## Example
    ``double free or corruption (out)`` then ``*** SIGABRT (@0x3394) received by PID``.
    """

    code = "NAN341"
    title = "The Caffe process crashed"
    detector = S.detect_crash
    kinds = ("crash",)

    def votes(self, finding, ctx):
        return ()  # a crash after the NaN is its consequence; a CHECK abort (NAN340) names the field
