"""Column storage for a run's displays, lr lines and outputs: a few arrays per series, not an object per value.

A long run logs millions of displays; as one ``TrainPoint`` (and its ``OutputValue``
list and strings) each, the trace took 2.6x the size of the log. Here every field is
an ``array`` (8 bytes a value; a ``None`` is a NaN plus a flag in a ``bytearray``)
and a text is stored only when it differs from ``format(value, "g")`` (Caffe prints
its numbers with the stream's default 6 significant digits, which is what ``g``
prints, so almost no text is kept).

``TrainSeries``, ``LrSeries`` and ``OutputColumns`` are read-only sequences to their
consumers: indexing or iterating builds the ``TrainPoint``/``LrPoint``/``OutputValue``
of a row on demand (equal to what the parser used to keep), and the hot consumers
read the columns themselves (``numpy(...)`` views). Only the parser appends.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, Sequence
from itertools import compress, repeat
from types import MappingProxyType

import numpy as np

from nandoctor.log.points import LrPoint, OutputValue, TrainPoint

NAN = float("nan")
NO_EXTRAS: Mapping[str, float] = MappingProxyType({})


class Floats:
    """Floats that may be None: the values (NaN for None) and a None flag per value."""

    __slots__ = ("none", "values")

    def __init__(self) -> None:
        self.values = array("d")
        self.none = bytearray()

    def __len__(self) -> int:
        return len(self.values)

    def get(self, i: int) -> float | None:
        return None if self.none[i] else self.values[i]

    def append(self, v: float | None) -> None:
        if v is None:
            self.values.append(NAN)
            self.none.append(1)
        else:
            self.values.append(v)
            self.none.append(0)

    def extend_numpy(self, values: np.ndarray, none: np.ndarray) -> None:
        self.values.frombytes(values.astype(np.float64).tobytes())
        self.none.extend(none.astype(np.uint8).tobytes())

    def __delitem__(self, span: slice) -> None:
        del self.values[span]
        del self.none[span]

    def numpy(self) -> np.ndarray:
        """The values (NaN where None) as a read-only float64 array sharing the memory."""
        return np.frombuffer(self.values, dtype=np.float64) if len(self.values) else np.zeros(0)

    def none_mask(self) -> np.ndarray:
        return np.frombuffer(self.none, dtype=bool) if len(self.none) else np.zeros(0, dtype=bool)


def as_floats(values: list) -> tuple[np.ndarray, np.ndarray]:
    """A list of float | None as (float64 values with NaN for None, None mask)."""
    arr = np.array(values, dtype=np.float64) if values else np.zeros(0)
    if values.count(None) if isinstance(values, list) else False:
        none = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    else:
        none = np.zeros(len(values), dtype=bool)
    return arr, none


def odd_texts(texts: list[str], values: np.ndarray) -> list[int]:
    """Positions whose text is not ``format(value, "g")`` (those texts must be stored)."""
    formatted = map(format, values.tolist(), repeat("g"))
    return list(compress(range(len(texts)), map(str.__ne__, texts, formatted)))


def _drop_keys(odd: dict, a: int, b: int) -> dict:
    """``odd`` (row -> text) after rows ``a``..``b`` were deleted."""
    n = b - a
    return {(k if k < a else k - n): t for k, t in odd.items() if not a <= k < b}


def _text(values: array, odd: dict[int, str], i: int) -> str:
    t = odd.get(i)
    return format(values[i], "g") if t is None else t


class OutputColumns(Sequence):
    """Train or test outputs (``#index: name = value (* weight = contribution loss)``), one row each."""

    __slots__ = ("contribution", "index", "line", "name", "names", "odd", "value", "weight")

    def __init__(self, names: list[str] | None = None) -> None:
        self.index = array("i")
        self.name = array("i")  # ids into names
        self.names: list[str] = [] if names is None else names
        self.value = Floats()
        self.odd: dict[int, str] = {}  # row -> text that format(value, "g") would not give
        self.line = array("q")
        self.weight = Floats()
        self.contribution = Floats()

    def __len__(self) -> int:
        return len(self.index)

    def row(self, i: int):
        v = self.value
        return OutputValue(
            self.index[i], self.names[self.name[i]], v.get(i), _text(v.values, self.odd, i), self.line[i],
            self.weight.get(i), self.contribution.get(i),
        )  # fmt: skip

    def rows(self, lo: int, hi: int) -> list:
        return [self.row(i) for i in range(lo, hi)]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.row(k) for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self.row(i)

    def __iter__(self) -> Iterator:
        return map(self.row, range(len(self)))

    def drop(self, a: int, b: int) -> None:
        """Delete rows ``a``..``b`` (the later ones move down)."""
        for column in (self.index, self.name, self.value, self.line, self.weight, self.contribution):
            del column[a:b]
        self.odd = _drop_keys(self.odd, a, b)

    def append(self, index: int, name_id: int, value, text: str, line: int, weight, contribution) -> None:
        row = len(self.index)
        self.index.append(index)
        self.name.append(name_id)
        self.value.append(value)
        if value is None or text != format(value, "g"):
            self.odd[row] = text
        self.line.append(line)
        self.weight.append(weight)
        self.contribution.append(contribution)


class _View(Sequence):
    """Rows ``lo``..``hi`` of a column store: a run's part of the file-wide columns.

    One store per trace and a view per run keeps a run's own cost at one small object,
    whatever the number of runs (a log of a million one-line runs). Indexing, slicing
    (a list), iterating and comparing behave as on a list of the points.
    """

    __slots__ = ("hi", "lo", "store")

    def __init__(self, store, lo: int = 0, hi: int | None = None) -> None:
        self.store = store
        self.lo = lo
        self.hi = len(store) if hi is None else hi

    def __len__(self) -> int:
        return self.hi - self.lo

    def row(self, i: int):
        return self.store.row(self.lo + i)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.store.row(self.lo + k) for k in range(*i.indices(len(self)))]
        n = self.hi - self.lo
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self.store.row(self.lo + i)

    def __iter__(self) -> Iterator:
        return map(self.store.row, range(self.lo, self.hi))

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)}>"

    def _ints(self, column: array) -> np.ndarray:
        if self.hi <= self.lo:
            return np.zeros(0, dtype=np.int64)
        return np.frombuffer(column, dtype=np.int64)[self.lo : self.hi]

    def _floats(self, column: Floats) -> np.ndarray:
        return column.numpy()[self.lo : self.hi] if self.hi > self.lo else np.zeros(0)

    def _none(self, column: Floats) -> np.ndarray:
        return column.none_mask()[self.lo : self.hi] if self.hi > self.lo else np.zeros(0, dtype=bool)

    def iterations(self) -> np.ndarray:
        return self._ints(self.store.iteration)

    def lines(self) -> np.ndarray:
        return self._ints(self.store.line)


class TrainColumns:
    """Displays ``Iteration N (...), loss = L`` with their train outputs and lr, for a whole trace."""

    __slots__ = ("final", "iteration", "line", "loss", "loss_odd", "lr", "lr_line", "out_start", "outputs", "seconds")

    def __init__(self, names: list[str] | None = None) -> None:
        self.iteration = array("q")
        self.line = array("q")
        self.loss = Floats()
        self.loss_odd: dict[int, str] = {}
        self.seconds = Floats()
        self.final = bytearray()
        self.lr = Floats()
        self.lr_line = array("q")  # -1: no lr line
        self.out_start = array("q", [0])  # outputs of display i: rows out_start[i]..out_start[i + 1]
        self.outputs = OutputColumns(names)

    def __len__(self) -> int:
        return len(self.iteration)

    def row(self, i: int):
        lr_line = self.lr_line[i]
        return TrainPoint(
            self.iteration[i], self.line[i], self.loss.get(i), _text(self.loss.values, self.loss_odd, i),
            self.seconds.get(i), bool(self.final[i]), self.outputs.rows(self.out_start[i], self.out_start[i + 1]),
            self.lr.get(i), None if lr_line < 0 else lr_line,
        )  # fmt: skip

    def append(self, iteration: int, line: int, loss, loss_text: str, seconds, final: bool) -> None:
        """One display without outputs (add them with ``add_output``) and without its lr yet."""
        i = len(self.iteration)
        self.iteration.append(iteration)
        self.line.append(line)
        self.loss.append(loss)
        if loss is None or loss_text != format(loss, "g"):
            self.loss_odd[i] = loss_text
        self.seconds.append(seconds)
        self.final.append(final)
        self.lr.append(None)
        self.lr_line.append(-1)
        self.out_start.append(self.out_start[-1])

    def drop(self, a: int, b: int) -> None:
        """Delete displays ``a``..``b`` with their outputs (the later ones move down)."""
        out_a, out_b = self.out_start[a], self.out_start[b]
        for column in (self.iteration, self.line, self.loss, self.seconds, self.final, self.lr, self.lr_line):
            del column[a:b]
        self.loss_odd = _drop_keys(self.loss_odd, a, b)
        self.outputs.drop(out_a, out_b)
        starts = np.frombuffer(self.out_start, dtype=np.int64)
        self.out_start = array("q", starts[: a + 1].tobytes() + (starts[b + 1 :] - (out_b - out_a)).tobytes())

    def add_output(self, index: int, name_id: int, value, text: str, line: int, weight, contribution) -> None:
        """An output of the last display."""
        self.outputs.append(index, name_id, value, text, line, weight, contribution)
        self.out_start[-1] += 1


class TrainSeries(_View):
    """A run's displays (a sequence of ``TrainPoint``); the column readers return numpy views."""

    __slots__ = ()

    def __init__(self, store: TrainColumns | None = None, lo: int = 0, hi: int | None = None) -> None:
        super().__init__(TrainColumns() if store is None else store, lo, hi)

    def losses(self) -> np.ndarray:
        return self._floats(self.store.loss)

    def loss_none(self) -> np.ndarray:
        return self._none(self.store.loss)

    def finals(self) -> np.ndarray:
        return (
            np.frombuffer(self.store.final, dtype=bool)[self.lo : self.hi] if self.hi > self.lo else np.zeros(0, bool)
        )

    def output_span(self) -> tuple[int, int]:
        """The rows of ``store.outputs`` that belong to this run's displays."""
        if self.hi <= self.lo:
            return 0, 0
        starts = self.store.out_start
        return starts[self.lo], starts[self.hi]

    def output_owner(self) -> np.ndarray:
        """For each output row in ``output_span``, the index (within this run) of its display."""
        if self.hi <= self.lo:
            return np.zeros(0, dtype=np.int64)
        starts = np.frombuffer(self.store.out_start, dtype=np.int64)[self.lo : self.hi + 1]
        return np.repeat(np.arange(self.hi - self.lo, dtype=np.int64), np.diff(starts))

    def output_names(self) -> list[str]:
        lo, hi = self.output_span()
        outs = self.store.outputs
        if hi - lo > 4096:  # a long run: the distinct ids by numpy, in order of first appearance
            ids = np.frombuffer(outs.name, dtype=np.int32)[lo:hi]
            uniq, first = np.unique(ids, return_index=True)
            order = uniq[np.argsort(first)].tolist()
        else:
            order = list(dict.fromkeys(outs.name[lo:hi]))
        return [outs.names[i] for i in order]


class LrColumns:
    """``Iteration N, lr = X`` lines (NVCaffe's extras kept only where present), for a whole trace."""

    __slots__ = ("extras", "iteration", "line", "odd", "value")

    def __init__(self) -> None:
        self.iteration = array("q")
        self.value = Floats()
        self.odd: dict[int, str] = {}
        self.line = array("q")
        self.extras: dict[int, Mapping[str, float]] = {}

    def __len__(self) -> int:
        return len(self.iteration)

    def row(self, i: int):
        return LrPoint(
            self.iteration[i], self.value.get(i), _text(self.value.values, self.odd, i), self.line[i],
            self.extras.get(i, NO_EXTRAS),
        )  # fmt: skip

    def drop(self, a: int, b: int) -> None:
        for column in (self.iteration, self.value, self.line):
            del column[a:b]
        self.odd = _drop_keys(self.odd, a, b)
        self.extras = _drop_keys(self.extras, a, b)

    def append(self, iteration: int, value, text: str, line: int, extras: Mapping[str, float] | None) -> None:
        i = len(self.iteration)
        self.iteration.append(iteration)
        self.value.append(value)
        if value is None or text != format(value, "g"):
            self.odd[i] = text
        self.line.append(line)
        if extras:
            self.extras[i] = extras


class LrSeries(_View):
    """A run's lr lines (a sequence of ``LrPoint``)."""

    __slots__ = ()

    def __init__(self, store: LrColumns | None = None, lo: int = 0, hi: int | None = None) -> None:
        super().__init__(LrColumns() if store is None else store, lo, hi)

    def values(self) -> np.ndarray:
        return self._floats(self.store.value)

    def value_none(self) -> np.ndarray:
        return self._none(self.store.value)


def train_arrays(train: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(iterations, lines, losses with NaN for None, finals) of a run's displays, without a point per row.

    A ``TrainSeries`` gives views of its columns; any other sequence of ``TrainPoint``
    (a hand-built segment) is read point by point.
    """
    if isinstance(train, TrainSeries):
        return train.iterations(), train.lines(), train.losses(), train.finals()
    its = np.fromiter((p.iteration for p in train), dtype=np.int64, count=len(train))
    lines = np.fromiter((p.line for p in train), dtype=np.int64, count=len(train))
    losses = np.fromiter((NAN if p.loss is None else p.loss for p in train), dtype=np.float64, count=len(train))
    finals = np.fromiter((bool(p.final) for p in train), dtype=bool, count=len(train))
    return its, lines, losses, finals


def lr_arrays(lr: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iterations, values with NaN for None, None mask) of a run's lr lines."""
    if isinstance(lr, LrSeries):
        return lr.iterations(), lr.values(), lr.value_none()
    its = np.fromiter((p.iteration for p in lr), dtype=np.int64, count=len(lr))
    values = np.fromiter((NAN if p.value is None else p.value for p in lr), dtype=np.float64, count=len(lr))
    none = np.fromiter((p.value is None for p in lr), dtype=bool, count=len(lr))
    return its, values, none
