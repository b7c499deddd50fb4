"""Scan data sources in parallel: plan units (key / row / line ranges), run them in worker processes,
merge the partial reports, show progress, stop cleanly on Ctrl-C.

The unit of work is ``(spec, Unit)``: one contiguous range of a source in Caffe's read order,
self-contained and picklable, whose result is a :class:`SourceReport` that
:func:`nandoctor.data.report.merge_reports` can combine with the others. That is also the
seam for distributed scans: ``--shard i/n`` runs the units of shard i here and writes a JSON
report for ``--merge``. A Dask adapter would need only: (1) run :func:`plan_units` on the
client (it reads keys/headers, cheap), (2) ``client.map(run_unit, units)`` with the data
visible to the workers under the same paths, (3) a progress callback instead of the shared
counter (:class:`Ticker` accepts any object with ``add``), and (4) ``merge_reports`` of the
gathered results. LMDB needs no lock to be shared; LevelDB workers each read their own
snapshot copy.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from nandoctor.core.lifetime import die_with_parent
from nandoctor.core.safeio import open_input
from nandoctor.core.types import InputError
from nandoctor.data import db
from nandoctor.data.report import DataReport, Issue, SourceReport, judge_shapes, merge_sources
from nandoctor.data.spec import SourceSpec


@dataclass(slots=True)
class Unit:
    """One contiguous range of a source, in read order."""

    start: int
    count: int
    key: db.KeyRange | None = None  # DB sources
    shard: str | None = None


@dataclass(slots=True)
class Plan:
    spec: SourceSpec
    total: int
    units: list[Unit]
    issues: list[Issue]
    h5plan: object | None = None
    error: str | None = None


# --------------------------------------------------------------------------- progress and stop


class Ticker:
    """Counts records done; ``add`` returns True when the scan should stop (Ctrl-C in the parent).

    Shared state is lock-free on purpose: a worker that dies (a damaged LMDB page faults) or is
    killed while holding a lock would leave every later worker waiting for it forever. Each
    process adds to its own slot of ``counts`` (indexed by pid) and only reads ``stop``.
    """

    def __init__(self, counts=None, stop=None):
        self.counts, self.stop = counts, stop
        self.local = 0

    def add(self, n: int) -> bool:
        if self.counts is not None:
            self.counts[os.getpid() % len(self.counts)] += n
        else:
            self.local += n
        return bool(self.stop is not None and self.stop.value)


_WORKER_TICKER: Ticker | None = None


def _init_worker(counter, stop, parent: int) -> None:
    global _WORKER_TICKER
    die_with_parent(parent)  # killed outright, the parent runs no cleanup: its workers must not linger
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    _WORKER_TICKER = Ticker(counter, stop)


def _ticker() -> Ticker:
    return _WORKER_TICKER or Ticker()


# --------------------------------------------------------------------------- planning


def plan_source(spec: SourceSpec, pieces: int, shard: tuple[int, int] | None = None) -> Plan:
    """Split a source into ``pieces`` units (per shard); runs in a worker (a corrupt DB may crash it)."""
    from nandoctor.data.scan_h5 import plan_hdf5
    from nandoctor.data.scan_list import plan_list

    index, count = shard or (0, 1)
    issues: list[Issue] = list(spec.pre_issues) if index == 0 else []
    try:
        if spec.kind in ("lmdb", "leveldb"):
            ranges_of = db.lmdb_ranges if spec.kind == "lmdb" else _leveldb_ranges(spec)
            total, ranges = ranges_of(spec.path, pieces * count)
            mine = _my_pieces(ranges, pieces, index, count)
            units = [Unit(r.start_index, r.count, r) for r in mine if r.count]
            return Plan(spec, total, units, issues)
        if spec.kind in ("hdf5", "hdf5file"):
            h5plan, found = plan_hdf5(spec)
            if index == 0:
                for kind, msg, listed, line, idx in found:
                    read = spec.schedule.first_read(idx) if idx is not None else None
                    rec = f"{os.path.basename(spec.path)}:{line}" if line else listed
                    issues.append(
                        Issue(
                            kind, msg, record=rec, index=idx, file=listed, row=line, read=read, detail={"scope": "file"}
                        )
                    )
                for kind, msg, line in h5plan.list_text_issues:
                    issues.append(
                        Issue(kind, msg, record=f"{os.path.basename(spec.path)}:{line}" if line else None, row=line)
                    )
            units = _even_units(h5plan.total, pieces, index, count)
            return Plan(spec, h5plan.total, units, issues, h5plan)
        if spec.kind == "imagelist":
            total, found = plan_list(spec)
            if index == 0:
                for kind, msg, listed, line, idx in found:
                    read = spec.schedule.first_read(idx) if idx is not None else None
                    issues.append(
                        Issue(
                            kind,
                            msg,
                            record=f"{os.path.basename(spec.path)}:{line}" if line else None,
                            index=idx,
                            file=listed,
                            row=line,
                            read=read,
                        )
                    )
            return Plan(spec, total, _even_units(total, pieces, index, count), issues)
        raise InputError(f"unknown source kind {spec.kind!r}", spec.path)
    except InputError as exc:
        return Plan(spec, 0, [], issues, error=exc.message)
    except Exception as exc:  # damaged data can make a reader library fail in any way
        return Plan(spec, 0, [], issues, error=f"cannot read: {type(exc).__name__}: {exc}")


def _leveldb_ranges(spec: SourceSpec):
    def ranges(path: str, n: int):
        return db.leveldb_ranges(path, n, allow_locked=spec.snapshot)

    return ranges


def _my_pieces(ranges: list, pieces: int, index: int, count: int) -> list:
    per = len(ranges) / count
    return ranges[round(index * per) : round((index + 1) * per)]


def _even_units(total: int, pieces: int, index: int, count: int) -> list[Unit]:
    a, b = total * index // count, total * (index + 1) // count
    n = max(1, min(pieces, b - a))
    cuts = [a + (b - a) * i // n for i in range(n + 1)]
    return [Unit(lo, hi - lo) for lo, hi in itertools.pairwise(cuts) if hi > lo]


# --------------------------------------------------------------------------- running a unit


def run_unit(plan: Plan, unit: Unit) -> SourceReport:
    """Scan one unit (in a worker or in-process)."""
    from nandoctor.data.scan_db import scan_db_shard
    from nandoctor.data.scan_h5 import scan_h5_range
    from nandoctor.data.scan_list import scan_list_range

    spec, ticker = plan.spec, _ticker()
    try:
        if spec.kind in ("lmdb", "leveldb"):
            return scan_db_shard(spec, unit.key, plan.total, ticker, unit.shard)
        if spec.kind in ("hdf5", "hdf5file"):
            return scan_h5_range(spec, plan.h5plan, unit.start, unit.count, ticker, unit.shard)
        return scan_list_range(spec, unit.start, unit.count, plan.total, ticker, unit.shard)
    except Exception as exc:  # a reader library failing on damaged data must not end the whole scan
        message = exc.message if isinstance(exc, InputError) else f"reading failed: {type(exc).__name__}: {exc}"
        rep = _empty_report(spec, plan.total)
        rep.complete = False
        rep.issues.append(
            Issue("unreadable_source", message, index=unit.start, read=spec.schedule.first_read(unit.start))
        )
        return rep


def _empty_report(spec: SourceSpec, total: int | None) -> SourceReport:
    return SourceReport(
        kind="hdf5" if spec.kind == "hdf5file" else spec.kind,
        path=spec.path,
        layer=spec.layer,
        phase=spec.phase,
        tops=list(spec.tops),
        batch_size=spec.schedule.batch_size,
        total=total,
        schedule=spec.schedule.to_dict(),
        transform=spec.transform_summary(),
    )


# --------------------------------------------------------------------------- orchestration


def scan_specs(
    specs: list[SourceSpec],
    *,
    workers: int | None = None,
    progress: bool | None = None,
    shard: tuple[int, int] | None = None,
) -> DataReport:
    """Scan every spec; ``workers=0`` runs in this process (no crash isolation), None = one per core.

    With ``workers=None`` a small data set (see :func:`is_small`) is scanned in this process:
    starting a pool costs more than the scan itself.
    """
    if workers is None:
        workers = 0 if is_small(specs) else (os.cpu_count() or 1)
    pieces = max(1, workers)
    runner = _Runner(workers, progress)
    try:
        plans = runner.map(plan_source, [(s, pieces, shard) for s in specs], what="planning")
        plans = [p if isinstance(p, Plan) else Plan(s, 0, [], [], error=p) for p, s in zip(plans, specs, strict=True)]
        if shard is not None:
            for p in plans:
                for u in p.units:
                    u.shard = f"{shard[0]}/{shard[1]}"
        jobs = [] if runner.interrupted else [(p, u) for p in plans for u in p.units]
        runner.total = sum(u.count for _p, u in jobs)
        results = runner.map(run_unit, jobs, what="scanning")
    except BaseException:
        runner.close(failed=True)
        raise
    runner.close()
    report = DataReport(interrupted=runner.interrupted)
    for plan in plans:
        parts = [r for (p, u), r in zip(jobs, results, strict=True) if p is plan]
        report.sources.append(_assemble(plan, parts, jobs, results, runner.interrupted))
    return report


def _assemble(plan: Plan, parts: list, jobs, results, interrupted: bool) -> SourceReport:
    spec = plan.spec
    good = [r for r in parts if isinstance(r, SourceReport)]
    src = merge_sources(good) if good else _empty_report(spec, plan.total)
    src.kind = "hdf5" if spec.kind == "hdf5file" else spec.kind
    src.total = plan.total
    src.transform = spec.transform_summary()
    src.schedule = spec.schedule.to_dict()
    if plan.h5plan is not None:
        src.files = [f.listed for f in plan.h5plan.files]
        src.tops = list(plan.h5plan.tops)
        first = next((f for f in plan.h5plan.files if not f.error and f.dims), None)
        if first and plan.h5plan.tops:
            src.shapes = {",".join(map(str, first.dims[plan.h5plan.tops[0]])): src.records}
    if plan.error:
        src.issues.insert(0, Issue("unreadable_source", plan.error))
    for (p, u), r in zip(jobs, results, strict=True):
        if p is plan and not isinstance(r, SourceReport):
            src.issues.append(
                Issue(
                    "unreadable_source",
                    f"records {u.start}..{u.start + u.count - 1}: {r}",
                    index=u.start,
                    read=spec.schedule.first_read(u.start),
                )
            )
            src.complete = False
    src.issues = plan.issues + src.issues
    if src.shape_examples:
        judge_shapes(src)
    src.complete = src.complete and not interrupted
    return src


# Below these a pool's start-up (fork, pipes, one more pass over the counters) outweighs the
# parallel speed-up: about 1 M small Datums a second are scanned per core, ~0.25 s per pool.
SMALL_BYTES = 32 << 20  # stored bytes of DBs and HDF5 files
SMALL_IMAGES = 200  # image-list lines (each image is decoded)
SMALL_LIST_BYTES = 64 << 10  # a list file read to count its lines or size its HDF5 files


def is_small(specs: list[SourceSpec]) -> bool:
    """Whether the whole scan is quick enough to run without a process pool (unsure: no)."""
    try:
        stored = sum(_stored_bytes(s) for s in specs)
    except (OSError, ValueError):
        return False
    return stored <= SMALL_BYTES


def _stored_bytes(spec: SourceSpec) -> int:
    """Bytes on disk behind a source (images count as SMALL_BYTES / SMALL_IMAGES each); ValueError if unsure."""

    def on_disk(path: str) -> int:
        st = os.stat(path)
        return min(st.st_size, st.st_blocks * 512) if st.st_blocks else st.st_size  # a sparse map is not data

    if spec.kind == "lmdb":
        return on_disk(os.path.join(spec.path, "data.mdb") if os.path.isdir(spec.path) else spec.path)
    if spec.kind == "leveldb":
        return sum(on_disk(e.path) for e in os.scandir(spec.path) if e.is_file())
    if spec.kind == "hdf5file":
        return on_disk(spec.path)
    try:
        fh = open_input(spec.path, "a list", SMALL_LIST_BYTES)  # never blocks on a FIFO
    except InputError:
        raise ValueError("not a short list file") from None
    with fh:
        lines = [ln.split()[0].decode("utf-8", "surrogateescape") for ln in fh.read(SMALL_LIST_BYTES).splitlines()
                 if ln.strip()]  # fmt: skip
    if spec.kind == "imagelist":
        if len(lines) > SMALL_IMAGES:
            raise ValueError("many images")
        return len(lines) * (SMALL_BYTES // SMALL_IMAGES)
    if spec.kind == "hdf5":
        return sum(on_disk(p if os.path.isabs(p) else os.path.join(spec.cwd, p)) for p in lines)
    raise ValueError(f"unknown kind {spec.kind}")


class _Runner:
    """A process pool (or in-process loop) with a shared record counter, a stop event and a progress bar."""

    def __init__(self, workers: int, progress: bool | None):
        self.workers = workers
        self.interrupted = False
        self.total = 0
        self._pool: ProcessPoolExecutor | None = None
        self._ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context("spawn")
        self._counter = self._ctx.RawArray("q", 1024)  # per-process slots, see Ticker
        self._stop = self._ctx.RawValue("b", 0)
        self._progress = _make_progress(progress)

    def _new_pool(self, n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            n, mp_context=self._ctx, initializer=_init_worker, initargs=(self._counter, self._stop, os.getpid())
        )

    def map(self, fn, argsets: list[tuple], what: str) -> list:
        if not argsets:
            return []
        if self.workers == 0:
            return self._map_inline(fn, argsets, what)
        if self._pool is None:
            self._pool = self._new_pool(self.workers)
        futures = [self._pool.submit(fn, *a) for a in argsets]
        results = self._collect(futures, what)
        # a crashed worker breaks the whole pool: retry each lost unit alone to find the culprit
        for i, r in enumerate(results):
            if isinstance(r, _Lost):
                if self._pool is not None:
                    self._pool.shutdown(cancel_futures=True)
                    self._pool = None
                with self._new_pool(1) as solo:
                    results[i] = self._collect([solo.submit(fn, *argsets[i])], what)[0]
                if isinstance(results[i], _Lost):
                    results[i] = "the reader process died while reading these records: the source is corrupt"
        return results

    def _map_inline(self, fn, argsets, what) -> list:
        global _WORKER_TICKER
        _WORKER_TICKER = Ticker(self._counter, self._stop)
        out = []
        task = self._start_task(what)

        def on_sigint(_sig, _frame):  # finish the current block, then return a partial report
            self._stop.value = 1
            self.interrupted = True

        try:
            old = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not the main thread
            old = None
        try:
            for a in argsets:
                out.append(fn(*a))
                self._tick(task)
            self._end_task(task)
        finally:
            _WORKER_TICKER = None
            if old is not None:
                signal.signal(signal.SIGINT, old)
        return out

    def _collect(self, futures: list[Future], what: str) -> list:
        task = self._start_task(what)
        pending = set(futures)
        while pending:
            try:
                _done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                self._stop.value = 1
                self.interrupted = True
            self._tick(task)
        out = []
        for f in futures:
            try:
                out.append(f.result())
            except BrokenProcessPool:
                out.append(_Lost())
            except InputError as exc:
                out.append(exc.message)
        self._tick(task)
        self._end_task(task)
        return out

    def _start_task(self, what: str):
        if self._progress is None:
            return None
        self._counter[:] = [0] * len(self._counter)
        if not self._progress.live.is_started:
            self._progress.start()
        return self._progress.add_task(what, total=self.total or None)

    def _end_task(self, task) -> None:
        if self._progress is not None and task is not None:
            self._progress.remove_task(task)

    def _tick(self, task) -> None:
        if self._progress is not None and task is not None:
            self._progress.update(task, completed=sum(self._counter))

    def close(self, failed: bool = False) -> None:
        if self._pool is not None:
            if failed:  # leaving on an exception (SIGTERM as SystemExit): do not wait for the units
                for proc in list(getattr(self._pool, "_processes", {}).values()):
                    proc.kill()
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._progress is not None and self._progress.live.is_started:
            self._progress.stop()


class _Lost:
    """A unit whose worker process died."""


def _make_progress(enabled: bool | None):
    import sys

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    class Rate(TextColumn):
        def __init__(self):
            super().__init__("")

        def render(self, task):
            from rich.text import Text

            speed = task.speed or (task.completed / task.elapsed if task.elapsed else 0)
            return Text(f"{speed:,.0f} records/s")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
