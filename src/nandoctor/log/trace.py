"""The training trace reconstructed from a Caffe log (what ``parse_log`` returns).

API (consumed by the symptoms, the rules and the diagnosis engine)
------------------------------------------------------------------
``Trace``
    ``path``, ``segments`` (one ``Segment`` per run found in the file: a new
    ``Initializing solver`` dump, an iteration counter that goes backwards or a
    ``Resuming from`` after training started a new one), ``stats`` (line counts,
    unparsed lines, over-long lines, gzip) and shortcuts to the first segment's
    ``solver``/``nets`` plus ``train``/``tests``/``lr`` over all segments.
``Segment``
    ``train``: a sequence of ``TrainPoint`` (``columns.TrainSeries``: built on demand
    from columns, which the hot readers use directly) (one per displayed iteration: ``iteration``,
    ``loss`` = the *smoothed* loss as printed, ``loss_text``, ``seconds`` since the
    previous display, ``outputs`` = list of ``OutputValue`` with raw ``value``,
    ``weight`` and ``contribution`` (= weight * value), ``lr``/``lr_line`` and ``line``).
    ``lr``: a sequence of ``LrPoint`` (``columns.LrSeries``) (``iteration``, ``value``, ``text``, ``extras`` such as
    NVCaffe's m/wd/gs, ``line``). ``tests``: list of ``TestPass`` (``iteration``,
    ``net_index``, ``outputs``, ``loss``). ``clips``: ``ClipEvent`` (``norm``,
    ``threshold``, ``factor``). ``multistep``, ``snapshots``, ``layers`` (net setup:
    top shapes and loss weights per layer), ``crashes`` (``Crash``: kind, message,
    line), ``solver``/``nets`` (``LogDocument``: the dumped protobuf text parsed with
    ``nandoctor.config.textformat``; ``log_line(pos)`` maps a position in it back to
    the log), ``debug`` (``DebugTable``: every debug_info value with its iteration,
    phase, direction, layer, blob and line) and ``info`` (solving name, lr policy,
    resumed-from file, optimization done, data restarts).

Every value keeps the 1-based line number of the log line it was read from.
Numbers are floats (nan/inf included); ``text`` keeps the spelling Caffe printed.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, NamedTuple

from nandoctor.config.textformat import Document, ParseError, Pos, parse_text
from nandoctor.log.columns import LrSeries, TrainSeries
from nandoctor.log.points import LrPoint, OutputValue, TrainPoint


@dataclass(slots=True)
class TestPass:
    iteration: int
    net_index: int
    line: int
    outputs: list[OutputValue] = field(default_factory=list)
    loss: float | None = None
    loss_line: int | None = None
    last_line: int = 0
    interrupted: bool = False


@dataclass(slots=True)
class ClipEvent:
    iteration: int | None
    norm: float | None
    threshold: float | None
    factor: float | None
    line: int


@dataclass(slots=True)
class MultiStepEvent:
    iteration: int
    step: int
    line: int


@dataclass(slots=True)
class Snapshot:
    path: str
    kind: str  # model | solverstate
    line: int
    iteration: int | None


@dataclass(slots=True)
class LayerSetup:
    name: str
    line: int
    net_index: int  # which net dump / setup block (0 = first net set up in this segment)
    top_shapes: list[tuple[tuple[int, ...], int]] = field(default_factory=list)
    loss_weights: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Crash:
    kind: str  # check_failed | fatal | signal | aborted | double_free | error
    message: str
    line: int


@dataclass(slots=True)
class LogDocument:
    """A protobuf dump found in the log (solver or net); parsed on first use.

    ``document`` is the ``textformat.Document`` (None when the dump is malformed,
    then ``error`` says why); its positions are relative to ``text``, and
    ``log_line(pos)`` turns them into log line numbers.
    """

    kind: str  # solver | net
    text: str
    start_line: int  # log line of the first text line (the one after the header)
    header_line: int
    role: str | None = None  # for nets: train | test
    test_index: int | None = None
    source: str | None = None  # net file named by "Creating ... net from net file: X"
    path: str = "<log>"
    _document: Document | None = None
    _error: str | None = None
    _parsed: bool = False

    def _parse(self) -> None:
        if self._parsed:
            return
        self._parsed = True
        try:
            self._document = parse_text(self.text, f"{self.path}:{self.start_line}")
        except ParseError as exc:
            self._error = f"log line {self.start_line + (exc.line or 1) - 1}: {exc.message}"
        except RecursionError:
            self._error = "dump nested too deeply"

    @property
    def document(self) -> Document | None:
        self._parse()
        return self._document

    @property
    def error(self) -> str | None:
        self._parse()
        return self._error

    def log_line(self, pos: Pos) -> int:
        return self.start_line + pos.line - 1

    @property
    def root(self):
        doc = self.document
        return doc.root if doc is not None else None


class DebugRecord(NamedTuple):
    line: int
    iteration: int | None
    phase: str  # train | test
    direction: str  # forward | backward | update
    layer: str
    role: str  # top | bottom | param | input
    blob: str
    what: str  # data | diff
    value: float


# code -> (direction, role, what)
DEBUG_CODES: tuple[tuple[str, str, str], ...] = (
    ("forward", "top", "data"),
    ("forward", "param", "data"),
    ("backward", "bottom", "diff"),
    ("backward", "param", "diff"),
    ("forward", "input", "data"),
    ("update", "param", "data"),
    ("update", "param", "diff"),
)


class DebugTable:
    """debug_info values, stored column-wise so a multi-GB debug log stays compact."""

    __slots__ = ("blob", "code", "iteration", "layer", "line", "names", "phase", "summaries", "value")

    def __init__(self) -> None:
        self.line = array("q")
        self.code = bytearray()
        self.layer = array("i")  # ids into names; 4 bytes: a debug log holds millions of values
        self.blob = array("i")
        self.value = array("d")
        self.iteration = array("q")  # -1 = unknown
        self.phase = bytearray()  # 0 train, 1 test
        self.names: list[str] = []
        # "[Backward] All net params" lines: (line, iteration, l1 data, l1 diff, l2 data, l2 diff)
        self.summaries: list[tuple[int, int | None, float, float, float, float]] = []

    def __len__(self) -> int:
        return len(self.line)

    def record(self, i: int) -> DebugRecord:
        direction, role, what = DEBUG_CODES[self.code[i]]
        it = self.iteration[i]
        return DebugRecord(
            self.line[i],
            None if it < 0 else it,
            "test" if self.phase[i] else "train",
            direction,
            self.names[self.layer[i]],
            role,
            self.names[self.blob[i]],
            what,
            self.value[i],
        )

    def __iter__(self) -> Iterator[DebugRecord]:
        for i in range(len(self.line)):
            yield self.record(i)

    def iterations(self, phase: str = "train") -> list[int]:
        want = 1 if phase == "test" else 0
        seen: dict[int, None] = {}
        for it, ph in zip(self.iteration, self.phase, strict=True):
            if ph == want and it >= 0:
                seen[it] = None
        return list(seen)

    def first_nonfinite(self, phase: str = "train") -> DebugRecord | None:
        want = 1 if phase == "test" else 0
        isfinite = math.isfinite
        for i, v in enumerate(self.value):
            if not isfinite(v) and self.phase[i] == want:
                return self.record(i)
        return None


@dataclass(slots=True)
class Segment:
    index: int
    start_line: int
    end_line: int = 0
    train: TrainSeries = field(default_factory=TrainSeries)  # a sequence of TrainPoint (columns inside)
    lr: LrSeries = field(default_factory=LrSeries)  # a sequence of LrPoint
    tests: list[TestPass] = field(default_factory=list)
    clips: list[ClipEvent] = field(default_factory=list)
    multistep: list[MultiStepEvent] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    layers: list[LayerSetup] = field(default_factory=list)
    crashes: list[Crash] = field(default_factory=list)
    solver: LogDocument | None = None
    nets: list[LogDocument] = field(default_factory=list)
    debug: DebugTable = field(default_factory=DebugTable)
    info: dict[str, Any] = field(default_factory=dict)
    # what analyses computed from this run (symptoms per detector, the debug_info localization):
    # several rules and the engine ask the same question of every run; not part of the trace's data
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_training(self) -> bool:
        return bool(self.train or self.lr or self.tests)

    @property
    def train_net(self) -> LogDocument | None:
        for n in self.nets:
            if n.role != "test":
                return n
        return None

    @property
    def test_nets(self) -> list[LogDocument]:
        return [n for n in self.nets if n.role == "test"]

    def output_names(self) -> list[str]:
        return self.train.output_names()


def _contiguous(series: list) -> bool:
    """The runs' views cover one unbroken range of one store (no run between them was dropped)."""
    return bool(series) and all(t.store is series[0].store and t.lo == prev.hi for prev, t in pairwise(series))


@dataclass(slots=True)
class Trace:
    path: str
    segments: list[Segment] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def solver(self) -> LogDocument | None:
        for s in self.segments:
            if s.solver is not None:
                return s.solver
        return None

    @property
    def nets(self) -> list[LogDocument]:
        for s in self.segments:
            if s.nets:
                return s.nets
        return []

    @property
    def train(self) -> Sequence[TrainPoint]:
        """Every run's displays in file order (one view of the columns when the parser built the runs)."""
        series = [s.train for s in self.segments]
        if _contiguous(series):
            return TrainSeries(series[0].store, series[0].lo, series[-1].hi)
        return [p for t in series for p in t]

    @property
    def tests(self) -> list[TestPass]:
        return [t for s in self.segments for t in s.tests]

    @property
    def lr(self) -> Sequence[LrPoint]:
        series = [s.lr for s in self.segments]
        if _contiguous(series):
            return LrSeries(series[0].store, series[0].lo, series[-1].hi)
        return [p for t in series for p in t]

    @property
    def crashes(self) -> list[Crash]:
        return [c for s in self.segments for c in s.crashes]

    @property
    def has_debug(self) -> bool:
        return any(len(s.debug) for s in self.segments)

    @property
    def empty(self) -> bool:
        return not any(s.has_training or s.solver or s.nets or len(s.debug) for s in self.segments)
