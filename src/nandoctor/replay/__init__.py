"""Replays of a failed Caffe run that localise the failing layer.

``prepare_replay(target, out_dir, probe=False, ...) -> ReplayPlan`` writes the debug copy
(or the input probe) into ``out_dir``; ``find_caffe()`` finds a Caffe to run it with and
``run_caffe(plan.command(caffe), plan.run.cwd, plan.log_path, ...)`` runs it safely.
The produced debug_info log is read by ``nandoctor.log.debug_analysis.localize``.
"""

from nandoctor.replay.locate import Failure, RunFiles, SnapshotPair, failure_in, find_run, find_snapshots
from nandoctor.replay.plan import ReplayPlan, missing_paths, prepare_replay
from nandoctor.replay.probe import ProbeOutput, probe_net_text, read_probe
from nandoctor.replay.runner import Caffe, Progress, RunResult, find_caffe, run_caffe

__all__ = [
    "Caffe",
    "Failure",
    "ProbeOutput",
    "Progress",
    "ReplayPlan",
    "RunFiles",
    "RunResult",
    "SnapshotPair",
    "failure_in",
    "find_caffe",
    "find_run",
    "find_snapshots",
    "missing_paths",
    "prepare_replay",
    "probe_net_text",
    "read_probe",
    "run_caffe",
]  # fmt: skip
