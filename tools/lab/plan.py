"""What one lab run is: the plain data a mechanism produces and a log shape adjusts.

A ``Plan`` holds everything needed to write a run folder (net and solver text, the data set
dicts of ``datasets.py``, small extra files such as a Python layer's module) and the ground
truth the mechanism stands for (cause, culprit, what was done, the outcome Caffe must show for
the run to be kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Plan:
    cause: str  # gradient_explosion, lr_policy, loss_function, bad_input, pooling, or healthy
    culprit: str | None
    # Each inner list is one thing the culprit must name; any one spelling in it will do
    # (e.g. [["train_lmdb"], ["00000040", "00000041"]]: the source and one of its bad records).
    culprit_tokens: tuple[tuple[str, ...], ...]
    what: str
    layers: tuple[str, ...]
    solver: dict
    datasets: tuple[dict, ...]  # the train set first; a test set second when the net has one
    expect: str = "nonfinite"  # nonfinite | abort | healthy
    driver: str = "train"  # train (caffe train) | step (pycaffe solver.step(step_iters))
    step_iters: int | None = None
    extra_files: tuple[tuple[str, str], ...] = ()  # (relative path, text): Python layer modules
    mean: dict | None = None  # {"rel": "mean.binaryproto", "shape": [...], "value": v, "nan_at": i}
    healthy_kind: str | None = None  # for healthy runs: which near-miss this is
    net_name: str = "LabNet"
    env: tuple[tuple[str, str], ...] = ()
    invocations: int = 1  # 2 = the same run started twice into one log (a user's restart)
    resume_at: int | None = None  # snapshot here, then resume from it in a second invocation
    log_file: bool = False  # take glog's own log file (with its header) instead of stderr
    notes: tuple[str, ...] = field(default=())

    def with_solver(self, **changes) -> Plan:
        solver = dict(self.solver)
        for k, v in changes.items():
            if v is None:
                solver.pop(k, None)
            else:
                solver[k] = v
        return replace(self, solver=solver)


def tokens(*groups) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(g) if isinstance(g, list | tuple) else (g,) for g in groups)
