"""Byte ranges of a log scanned in forked worker processes, the results read back in file order.

Range ``i`` goes to worker ``i % n``, which scans its ranges in order; the parser
takes range ``i``'s result from worker ``i % n``. Nothing is sent to a worker: it
gets its ranges through ``fork``. Compared with ``concurrent.futures`` this spares the
parsing process the pickling of every result, a management thread and a task queue,
about 0.4 CPU-seconds per GB of log, and it is the parsing process that the whole
parse waits for in the end.

How a result travels: each worker shares ``SLOTS`` buffers with the parser (an
anonymous shared mapping made before the fork). It writes a result
(``chunks.scan_range_packed``'s marshal blob) into a free slot and announces it on
its pipe with a 16-byte header (length, slot); the parser unmarshals it straight from
the slot and hands the slot back through a second pipe. So a worker runs ahead of
the parser by up to ``SLOTS`` results instead of stalling on a full pipe while the
parser merges. A result larger than a slot follows its header on the pipe itself.

A worker stays until the parser closes its end of the slot pipe, so slots are only
ever handed back to a live process. Failures: an exception in a worker is sent back
pickled in place of a result and raised in the parser; a worker that dies without a
word (killed, out of memory) shows as a ``ChildProcessError``. Leaving early (an
exception in the parser, a generator not run to its end) kills and reaps every worker.
"""

from __future__ import annotations

import marshal
import mmap
import os
import pickle
import signal
import struct
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass

from nandoctor.log.chunks import BLOCK, scan_range_packed

_HEADER = struct.Struct("<qq")  # blob length (-length: a pickled exception), slot (-1: on the pipe)
_READ = 1 << 20
SLOTS = 3
SLOT_SIZE = BLOCK  # a chunk's result is a quarter of its bytes or less


def available() -> bool:
    return hasattr(os, "fork")


@dataclass
class _Worker:
    pid: int
    results: int  # read end of the pipe it announces results on
    freed: int  # write end of the pipe the parser hands slots back on
    slots: mmap.mmap


def scan_in_order(path: str, ranges: list[tuple[int, int]], bare: bool, workers: int) -> Iterator[tuple]:
    """The scan of each range (the unmarshalled ``scan_range_packed`` result), in the order of ``ranges``."""
    token = os.urandom(16)  # names this parse for the workers' memory of dumps already sent
    n = max(1, min(workers, len(ranges)))
    started: list[_Worker] = []
    try:
        for w in range(n):
            started.append(_start(path, ranges[w::n], bare, token))
        for i in range(len(ranges)):
            yield _receive(started[i % n])
    finally:
        for worker in started:
            with suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)  # already gone when all went well
            os.close(worker.results)
            os.close(worker.freed)
            os.waitpid(worker.pid, 0)
            worker.slots.close()


def _start(path: str, ranges: list[tuple[int, int]], bare: bool, token: bytes) -> _Worker:
    slots = mmap.mmap(-1, SLOTS * SLOT_SIZE)  # anonymous and shared: both sides of the fork see it
    results_read, results_write = os.pipe()
    freed_read, freed_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        os.close(results_read)
        os.close(freed_write)
        _work(results_write, freed_read, slots, path, ranges, bare, token)
    os.close(results_write)
    os.close(freed_read)
    return _Worker(pid, results_read, freed_write, slots)


def _work(out: int, freed: int, slots: mmap.mmap, path: str, ranges, bare: bool, token: bytes) -> None:
    status = 0
    free = list(range(SLOTS))
    try:
        for lo, hi in ranges:
            blob = scan_range_packed(path, lo, hi, bare, token)
            if len(blob) > SLOT_SIZE:
                _write(out, _HEADER.pack(len(blob), -1) + blob)
                continue
            if not free:  # wait for the parser to hand one back
                free.append(_read_exactly(freed, 1, os.getppid())[0])
            slot = free.pop()
            slots[slot * SLOT_SIZE : slot * SLOT_SIZE + len(blob)] = blob
            _write(out, _HEADER.pack(len(blob), slot))
        # stay until the parser is done with us, so that it never hands a slot back to a
        # process that is gone (a write to a closed pipe can kill the writer)
        while os.read(freed, 4096):
            pass
    except BaseException as exc:  # whatever it is, the parser raises it
        status = 1
        with suppress(Exception):  # the parser is gone, or the exception does not pickle: exit all the same
            error = pickle.dumps(exc)
            _write(out, _HEADER.pack(-len(error), -1) + error)
    finally:
        os._exit(status)  # no atexit handlers or buffers of the parsing process run twice


def _receive(worker: _Worker) -> tuple:
    length, slot = _HEADER.unpack(_read_exactly(worker.results, _HEADER.size, worker.pid))
    if length < 0:
        raise pickle.loads(_read_exactly(worker.results, -length, worker.pid))  # our own worker's exception
    if slot < 0:
        return marshal.loads(_read_exactly(worker.results, length, worker.pid))
    start = slot * SLOT_SIZE
    with memoryview(worker.slots) as view, view[start : start + length] as blob:
        result = marshal.loads(blob)  # our own worker's blob, never the input
    with suppress(BrokenPipeError):  # the worker died after sending: its next result says so
        os.write(worker.freed, bytes((slot,)))
    return result


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int, pid: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got : got + _READ]])
        if k == 0:
            raise ChildProcessError(f"log scan worker {pid} ended without sending its result")
        got += k
    return buf
