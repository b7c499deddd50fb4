"""Framework runs after the fact: Hugging Face Trainer, Lightning and TensorBoard logs.

    from nandoctor.runs import diagnose_run, read_run, run_kind
    diagnosis = diagnose_run("output_dir")      # a Diagnosis, as for a Caffe run

Readers (``hf``, ``lightning``, ``tensorboard``, ``console``) fill one :class:`RunLog`;
``timeline`` finds the onset; the NAN7xx rules name the cause; ``diagnosis`` ranks it.
"""

from nandoctor.runs.detect import read_run, run_kind
from nandoctor.runs.diagnosis import diagnose_log, diagnose_run
from nandoctor.runs.record import EvalPoint, Point, RunLog

__all__ = ["EvalPoint", "Point", "RunLog", "diagnose_log", "diagnose_run", "read_run", "run_kind"]
