"""``python -I pycaffe_driver.py [--path DIR] --solver S [--snapshot X] [--steps N] [--gpu N]``: caffe train via pycaffe.

Used by ``nandoctor replay --run`` when no ``caffe`` binary is found but ``import caffe``
works. It does what ``caffe train`` does for a replay (set the mode, build the solver,
restore a snapshot, solve), or steps the solver ``N`` iterations the way a user's script
calling ``solver.step(N)`` did (``--steps``: Step ignores max_iter, Solve stops there); glog writes to stderr because the runner sets
GLOG_logtostderr=1. Exit codes follow Caffe's: 0 done, 1 bad arguments or a Python error.

It is started isolated (``python -I``): neither the run folder nor ``$PYTHONPATH`` comes
first on ``sys.path``, so a stray ``argparse.py`` beside the solver is never imported. The
folders pycaffe needs (``--path``, ``$CAFFE_PYTHON``) and then ``$PYTHONPATH`` (where a
Python layer's module lives) are appended after the standard library and site-packages.
"""

from __future__ import annotations

import argparse
import os
import sys


def extend_path(extra: list[str], python_layers: bool = False, env=os.environ) -> None:
    """Append the folders pycaffe and Python layers are imported from, after everything standard.

    A relative ``$PYTHONPATH`` entry (``.``, ``layers``) names a folder of the run, from which
    only a net's Python layer may be imported: it is added only with ``python_layers``, as
    ``caffe train`` would resolve it (against the working directory, the run's folder).
    """
    wanted = [*extra, env.get("CAFFE_PYTHON", "")]
    for d in env.get("PYTHONPATH", "").split(os.pathsep):
        if os.path.isabs(d):
            wanted.append(d)
        elif python_layers:
            wanted.append(os.path.abspath(d or "."))
    for d in wanted:
        if d and os.path.isabs(d) and d not in sys.path:
            sys.path.append(d)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pycaffe_driver")
    p.add_argument("--solver", required=True)
    p.add_argument("--snapshot")
    p.add_argument("--gpu")
    p.add_argument("--steps", type=int, help="solver.step(N) instead of solve()")
    p.add_argument("--path", action="append", default=[], help="a folder to import pycaffe from")
    p.add_argument("--python-layers", action="store_true", help="the net has Python layers: relative $PYTHONPATH too")
    args = p.parse_args(argv)
    extend_path(args.path, args.python_layers)
    import caffe

    if args.gpu is not None:
        caffe.set_device(int(args.gpu.split(",")[0]))
        caffe.set_mode_gpu()
    else:
        caffe.set_mode_cpu()
    solver = caffe.get_solver(args.solver)
    if args.snapshot:
        solver.restore(args.snapshot)
    if args.steps is not None:
        solver.step(args.steps)
    else:
        solver.solve()
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    sys.exit(main())
