"""``python -m nandoctor.replay.pycaffe_driver --solver S [--snapshot X] [--gpu N]``: caffe train via pycaffe.

Used by ``nandoctor replay --run`` when no ``caffe`` binary is found but ``import caffe``
works. It does what ``caffe train`` does for a replay (set the mode, build the solver,
restore a snapshot, solve); glog writes to stderr because the runner sets
GLOG_logtostderr=1. Exit codes follow Caffe's: 0 done, 1 bad arguments or a Python error.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pycaffe_driver")
    p.add_argument("--solver", required=True)
    p.add_argument("--snapshot")
    p.add_argument("--gpu")
    args = p.parse_args(argv)
    import caffe

    if args.gpu is not None:
        caffe.set_device(int(args.gpu.split(",")[0]))
        caffe.set_mode_gpu()
    else:
        caffe.set_mode_cpu()
    solver = caffe.get_solver(args.solver)
    if args.snapshot:
        solver.restore(args.snapshot)
    solver.solve()
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    sys.exit(main())
