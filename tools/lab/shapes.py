"""Log shapes: how the same mechanism looks in the log a user ends up with. Each shape adjusts a
plan's solver, driver or environment; the mechanism itself stays what it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tools.lab.plan import Plan


@dataclass(frozen=True)
class Shape:
    name: str
    apply: Callable[[Plan], Plan]
    summary: str
    sets_solver_type: bool = False


def _iters(p: Plan, at_least: int) -> int:
    return max(p.solver.get("max_iter") or 0, at_least)


def _display(n: int, at_least: int = 0):
    def apply(p: Plan) -> Plan:
        q = p.with_solver(display=n)
        if at_least and p.solver.get("max_iter"):
            q = q.with_solver(max_iter=_iters(p, at_least))
        if at_least and p.step_iters:
            q = replace(q, step_iters=max(p.step_iters, at_least))
        return q

    return apply


def _solver_type(name: str, **fields):
    def apply(p: Plan) -> Plan:
        return p.with_solver(type=name, **fields)

    return apply


def _test(p: Plan) -> Plan:
    return p.with_solver(test_iter=4, test_interval=20, test_initialization=True)


def _debug(p: Plan) -> Plan:
    # debug_info prints ~40 lines per displayed iteration: display 5 keeps the log readable
    return p.with_solver(debug_info=True, display=5)


def _resume(p: Plan) -> Plan:
    total = p.solver.get("max_iter") or 100
    return replace(p, resume_at=max(10, (total // 2) // 10 * 10))


def _combo_a(p: Plan) -> Plan:
    return _test(p).with_solver(display=5, average_loss=5)


def _combo_b(p: Plan) -> Plan:
    q = p.with_solver(display=20, iter_size=2, max_iter=_iters(p, 200) if p.solver.get("max_iter") else None)
    return replace(q, env=(*q.env, ("GLOG_log_year_in_prefix", "false")))


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in [
        Shape("d10", lambda p: p, "display 10 (the base shape)"),
        Shape("d1", _display(1), "display 1"),
        Shape("d5", _display(5), "display 5"),
        Shape("d20", _display(20, 200), "display 20, at least 200 iterations"),
        Shape("d50", _display(50, 300), "display 50, at least 300 iterations"),
        Shape("d100", _display(100, 400), "display 100, at least 400 iterations"),
        Shape("avg10", lambda p: p.with_solver(average_loss=10), "average_loss 10 (smoothed loss)"),
        Shape("iter2", lambda p: p.with_solver(iter_size=2), "iter_size 2"),
        Shape("test", _test, "TEST phase every 20 iterations, tested at 0"),
        Shape("debug", _debug, "debug_info on, display 5"),
        Shape(
            "noyear",
            lambda p: replace(p, env=(*p.env, ("GLOG_log_year_in_prefix", "false"))),
            "glog prefix without the year (glog < 0.6 style)",
        ),
        Shape("logfile", lambda p: replace(p, log_file=True), "glog's own INFO log file (with its header)"),
        Shape("restart", lambda p: replace(p, invocations=2), "the same run started twice into one log"),
        Shape("resume", _resume, "snapshot half way, then resumed from the .solverstate into the same log"),
        Shape(
            "pycaffe",
            lambda p: replace(p, driver="step", step_iters=p.solver.get("max_iter") or 100),
            "pycaffe solver.step(max_iter) instead of caffe train",
        ),
        Shape("nesterov", _solver_type("Nesterov"), "type Nesterov", sets_solver_type=True),
        Shape(
            "adam",
            _solver_type("Adam", base_lr=0.001, momentum2=0.999),
            "type Adam, base_lr 0.001",
            sets_solver_type=True,
        ),
        Shape(
            "rmsprop",
            _solver_type("RMSProp", base_lr=0.001, momentum=None, rms_decay=0.98),
            "type RMSProp, base_lr 0.001",
            sets_solver_type=True,
        ),
        Shape("adagrad", _solver_type("AdaGrad", momentum=None), "type AdaGrad", sets_solver_type=True),
        Shape(
            "adadelta",
            _solver_type("AdaDelta", base_lr=1.0, momentum=0.95, delta=1e-6),
            "type AdaDelta, base_lr 1, momentum 0.95",
            sets_solver_type=True,
        ),
        Shape("clip", lambda p: p.with_solver(clip_gradients=1000.0), "clip_gradients 1000 (engages rarely)"),
        Shape("combo_a", _combo_a, "display 5, average_loss 5, TEST every 20"),
        Shape("combo_b", _combo_b, "display 20, iter_size 2, no year in the glog prefix"),
    ]
}
