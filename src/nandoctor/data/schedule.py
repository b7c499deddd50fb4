"""Which iteration first reads a record, given Caffe's read order.

Caffe's data layers read sequentially and wrap around: DB layers in byte order of the keys,
HDF5Data files in list order and rows in order, ImageData lines in order (all without
``shuffle``). The TRAIN net consumes ``batch_size`` records per forward pass and
``iter_size`` passes per iteration, so the record at ordinal ``i`` is first read at
``iteration = (i // batch_size) // iter_size``. A TEST net keeps its cursor between test
passes: pass ``p`` reads ``test_iter * batch_size`` records and runs at iteration
``p * test_interval`` (``(p + 1) * test_interval`` when ``test_initialization`` is false).

Uncertain cases say so in ``Read.note``: ``shuffle: true`` (order random), ``rand_skip``
(a random number of records skipped once at start) and multi-GPU runs (each solver takes
every k-th record) are not predicted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Read:
    """When Caffe first reads a record: iteration, the global batch number and the slot in the batch."""

    iteration: int | None
    batch: int | None
    slot: int | None
    note: str = ""


@dataclass(slots=True)
class ReadSchedule:
    batch_size: int | None
    phase: str = "TRAIN"
    iter_size: int = 1
    test_iter: int | None = None
    test_interval: int | None = None
    test_initialization: bool = True
    shuffle: bool = False
    rand_skip: int = 0

    def first_read(self, index: int) -> Read:
        if self.shuffle:
            return Read(None, None, None, "shuffle is on: the read order is random")
        if not self.batch_size or self.batch_size <= 0:
            return Read(None, None, None, "batch_size unknown")
        batch, slot = divmod(index, self.batch_size)
        note = ""
        if self.rand_skip:
            note = f"rand_skip {self.rand_skip}: Caffe skips up to that many records at start, so it may come earlier"
        if self.phase == "TEST":
            if not self.test_iter or not self.test_interval:
                return Read(None, batch, slot, "TEST net: test_iter/test_interval unknown")
            test_pass, batch_in_pass = divmod(batch, self.test_iter)
            iteration = (test_pass + (0 if self.test_initialization else 1)) * self.test_interval
            return Read(iteration, batch_in_pass, slot, (note + " " if note else "") + f"TEST pass {test_pass}")
        return Read(batch // max(1, self.iter_size), batch, slot, note)

    def iterations_reading(self, index: int, total: int, upto: int) -> list[int]:
        """Every TRAIN iteration < ``upto`` reading record ``index`` of ``total`` (the read order wraps)."""
        if self.shuffle or not self.batch_size or self.phase != "TRAIN" or total <= 0:
            return []
        per_iter = self.batch_size * max(1, self.iter_size)
        out, sample = [], index
        while sample // per_iter < upto:
            out.append(sample // per_iter)
            sample += total
        return out

    def to_dict(self) -> dict:
        return asdict(self)
