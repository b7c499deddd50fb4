"""Public entry points of the data scanner (what ``diagnose`` and ``scan-data`` call).

    scan_net(net_or_path, root=None, phases=("TRAIN", "TEST"), ...) -> DataReport
    scan_source(path, kind=None, batch_size=None, ...) -> DataReport
    scan_paths(paths, root=None, ...) -> DataReport   # prototxts and sources mixed

Every function takes ``workers`` (None: one process per core, 0: in this process),
``progress`` (None: a progress bar when stderr is a terminal) and ``shard`` ((i, n): scan
only the i-th of n equal parts, for ``--merge`` later).
"""

from __future__ import annotations

import os
from pathlib import Path

from nandoctor.core.types import InputError
from nandoctor.data.checks import LabelRule, Transform
from nandoctor.data.report import DataReport
from nandoctor.data.scan import scan_specs
from nandoctor.data.schedule import ReadSchedule
from nandoctor.data.spec import SourceSpec, detect_kind

PROTOTXT_SUFFIXES = (".prototxt", ".pbtxt", ".pt")


def scan_net(
    net,
    *,
    root: str | None = None,
    phases=("TRAIN", "TEST"),
    solver=None,
    workers: int | None = None,
    progress: bool | None = None,
    shard: tuple[int, int] | None = None,
    snapshot: bool = False,
) -> DataReport:
    """Scan every data source of a net: ``net`` is a net/solver file path or a config.net.Net.

    Relative sources resolve from ``root`` (default: the folder of the file, where Caffe runs
    are normally started; Caffe itself uses the process CWD).
    """
    from nandoctor.data.netsources import specs_for_config, specs_for_net

    if isinstance(net, (str, Path)):
        specs = specs_for_config(str(net), root, phases)
    else:
        run_dir = root if root is not None else str(Path(net.doc.path).resolve().parent)
        specs = specs_for_net(net, run_dir, solver, phases)
    for s in specs:
        s.snapshot = snapshot
    return scan_specs(specs, workers=workers, progress=progress, shard=shard)


def source_spec(
    path: str,
    *,
    kind: str | None = None,
    batch_size: int | None = None,
    iter_size: int = 1,
    phase: str = "TRAIN",
    tops: tuple[str, ...] | None = None,
    num_classes: int | None = None,
    scale: float = 1.0,
    root: str | None = None,
    snapshot: bool = False,
    is_color: bool = True,
    root_folder: str = "",
) -> SourceSpec:
    """A spec for a source given directly (no net): Caffe's defaults, or what the caller says."""
    kind = kind or detect_kind(path)
    cwd = root if root is not None else (os.getcwd() if kind in ("hdf5", "imagelist") else ".")
    if tops is None:
        tops = () if kind in ("hdf5", "hdf5file") else ("data", "label")
    labels = LabelRule(num_classes) if num_classes else None
    return SourceSpec(kind=kind, path=str(path), phase=phase, tops=tuple(tops),
                      schedule=ReadSchedule(batch_size, phase, iter_size), transform=Transform(scale=scale),
                      labels=labels, cwd=cwd, declared=str(path), snapshot=snapshot, is_color=is_color,
                      root_folder=root_folder)  # fmt: skip


def scan_source(
    path: str,
    *,
    workers: int | None = None,
    progress: bool | None = None,
    shard: tuple[int, int] | None = None,
    **spec_args,
) -> DataReport:
    """Scan one LMDB/LevelDB directory, HDF5 list or file, or image list (see :func:`source_spec`)."""
    return scan_specs([source_spec(path, **spec_args)], workers=workers, progress=progress, shard=shard)


def is_config(path: str) -> bool:
    p = Path(path)
    if p.is_dir():
        return False
    return p.suffix.lower() in PROTOTXT_SUFFIXES


def specs_for_paths(
    paths: list[str], root: str | None = None, phases=("TRAIN", "TEST"), **spec_args
) -> list[SourceSpec]:
    from nandoctor.data.netsources import specs_for_config

    specs: list[SourceSpec] = []
    for path in paths:
        if not Path(path).exists():
            raise InputError("not found", path)
        if is_config(path):
            specs += specs_for_config(path, root, phases)
        else:
            specs.append(source_spec(path, root=root, **spec_args))
    return specs


def scan_paths(
    paths: list[str],
    *,
    root: str | None = None,
    phases=("TRAIN", "TEST"),
    workers: int | None = None,
    progress: bool | None = None,
    shard: tuple[int, int] | None = None,
    **spec_args,
) -> DataReport:
    """Scan net/solver files (all their sources) and data sources given directly, in one report."""
    specs = specs_for_paths(paths, root, phases, **spec_args)
    return scan_specs(specs, workers=workers, progress=progress, shard=shard)
