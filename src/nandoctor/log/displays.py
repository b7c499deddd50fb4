"""A chunk's displays (``scan.Displays``, Python lists) copied into the trace's columns a run at a time."""

from __future__ import annotations

import numpy as np

from nandoctor.log.columns import LrColumns, TrainColumns, as_floats, odd_texts
from nandoctor.log.scan import Displays


def _odd(texts: list[str], values: np.ndarray) -> np.ndarray:
    return np.array(odd_texts(texts, values), dtype=np.int64)


def _take_odd(target: dict[int, str], odd: np.ndarray, texts: list[str], rows: np.ndarray, first: int) -> None:
    """The odd texts among chunk rows ``rows`` (sorted), stored at ``first`` + their position in ``rows``."""
    if not len(odd) or not len(rows):
        return
    at = np.searchsorted(rows, odd)
    inside = at < len(rows)
    inside[inside] = rows[at[inside]] == odd[inside]
    for pos, row in zip(at[inside].tolist(), odd[inside].tolist(), strict=True):
        target[first + pos] = texts[row]


# a run of a few displays (a log of many short runs) is copied value by value: numpy's
# per-call cost would be most of the work
FEW = 8


class ChunkDisplays:
    """The columns of one chunk's displays as numpy arrays (line numbers made absolute with ``base``)."""

    def __init__(self, d: Displays, base: int, output_ids: dict[str, int], output_names: list[str]) -> None:
        self.d = d
        self.base = base
        self.output_ids = output_ids
        self.its = np.array(d.iteration, dtype=np.int64)
        self.loss, self.loss_none = as_floats(d.loss)
        self.loss_odd = _odd(d.text, self.loss)
        self.seconds, self.seconds_none = as_floats(d.seconds)
        self.out_start = np.array(d.out_start, dtype=np.int64)
        self.lr_rows = np.array(d.lr, dtype=np.int64)
        index, names, values, texts, lines, weights, contributions = d.out
        for name in set(names):
            if name not in output_ids:
                output_ids[name] = len(output_names)
                output_names.append(name)
        self.o_index = np.array(index, dtype=np.int32)
        self.o_name = np.array(list(map(output_ids.__getitem__, names)), dtype=np.int32)
        self.o_value, self.o_value_none = as_floats(values)
        self.o_odd = _odd(texts, self.o_value)
        self.o_line = np.array(lines, dtype=np.int64) + base
        self.o_weight, self.o_weight_none = as_floats(weights)
        self.o_contribution, self.o_contribution_none = as_floats(contributions)
        r_it, r_value, r_text, r_line, _ = d.lrs
        self.r_it = np.array(r_it, dtype=np.int64)
        self.r_value, self.r_value_none = as_floats(r_value)
        self.r_odd = _odd(r_text, self.r_value)
        self.r_line = np.array(r_line, dtype=np.int64) + base

    def copy(self, pending: list[int], lines: list[int], finals: list[bool], tc: TrainColumns, lc: LrColumns) -> None:
        """Append displays ``pending`` (rows of this chunk, ascending) with their outputs and lr lines."""
        if len(pending) <= FEW:
            self._copy_few(pending, lines, finals, tc, lc)
            return
        ks = np.array(pending, dtype=np.int64)
        n, first = len(ks), len(tc)
        tc.iteration.frombytes(self.its[ks].tobytes())
        tc.line.frombytes(np.array(lines, dtype=np.int64).tobytes())
        tc.loss.extend_numpy(self.loss[ks], self.loss_none[ks])
        _take_odd(tc.loss_odd, self.loss_odd, self.d.text, ks, first)
        tc.seconds.extend_numpy(self.seconds[ks], self.seconds_none[ks])
        tc.final.extend(bytes(finals))
        tc.lr.extend_numpy(np.full(n, np.nan), np.ones(n, dtype=bool))  # set by the lr lines at the run's end
        tc.lr_line.frombytes(np.full(n, -1, dtype=np.int64).tobytes())
        starts = self.out_start[ks]
        counts = self.out_start[ks + 1] - starts
        total = int(counts.sum())
        tc.out_start.frombytes((tc.out_start[-1] + np.cumsum(counts)).tobytes())
        if total:
            if int(starts[-1] + counts[-1] - starts[0]) == total:  # contiguous: one slice
                rows = np.arange(starts[0], starts[0] + total, dtype=np.int64)
            else:
                ends = np.cumsum(counts)
                rows = np.arange(total, dtype=np.int64) - np.repeat(ends - counts - starts, counts)
            oc = tc.outputs
            out_first = len(oc)
            oc.index.frombytes(self.o_index[rows].tobytes())
            oc.name.frombytes(self.o_name[rows].tobytes())
            oc.value.extend_numpy(self.o_value[rows], self.o_value_none[rows])
            _take_odd(oc.odd, self.o_odd, self.d.out[3], rows, out_first)
            oc.line.frombytes(self.o_line[rows].tobytes())
            oc.weight.extend_numpy(self.o_weight[rows], self.o_weight_none[rows])
            oc.contribution.extend_numpy(self.o_contribution[rows], self.o_contribution_none[rows])
        lr = self.lr_rows[ks]
        lr = lr[lr >= 0]
        if len(lr):
            lr_first = len(lc)
            lc.iteration.frombytes(self.r_it[lr].tobytes())
            lc.value.extend_numpy(self.r_value[lr], self.r_value_none[lr])
            _take_odd(lc.odd, self.r_odd, self.d.lrs[2], lr, lr_first)
            lc.line.frombytes(self.r_line[lr].tobytes())
            extras = self.d.lrs[4]
            if any(e is not None for e in extras):
                for pos, row in enumerate(lr.tolist()):
                    if extras[row]:
                        lc.extras[lr_first + pos] = extras[row]

    def _copy_few(self, pending: list[int], lines: list[int], finals: list[bool], tc: TrainColumns,
                  lc: LrColumns) -> None:  # fmt: skip
        d, base, ids = self.d, self.base, self.output_ids
        index, names, values, texts, out_lines, weights, contributions = d.out
        r_it, r_value, r_text, r_line, r_extras = d.lrs
        for k, line, final in zip(pending, lines, finals, strict=True):
            tc.append(d.iteration[k], line, d.loss[k], d.text[k], d.seconds[k], final)
            for o in range(d.out_start[k], d.out_start[k + 1]):
                tc.add_output(index[o], ids[names[o]], values[o], texts[o], out_lines[o] + base, weights[o],
                              contributions[o])  # fmt: skip
            r = d.lr[k]
            if r >= 0:
                lc.append(r_it[r], r_value[r], r_text[r], r_line[r] + base, r_extras[r])
