"""Caffe runtime logs: streaming parser, training trace, symptoms and exports.

``parse_log(path_or_file) -> Trace`` (``log.parser``; the Trace API is documented in
``log.trace``), ``log.symptoms.symptoms(trace) -> list[Symptom]``, CSV/JSON exports
(``log.export``) and the comparison of the dumped solver/net with their files
(``log.reconstruct``). The rules built on the symptoms live in ``nandoctor.rules.log``.
(The ``symptoms`` function is not re-exported here: it would shadow its module.)
"""

from nandoctor.log.parser import parse_log
from nandoctor.log.trace import Segment, Trace

__all__ = ["Segment", "Trace", "parse_log"]
