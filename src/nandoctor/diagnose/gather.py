"""Read every source a run offers and run every rule on it: the facts and findings of one diagnosis.

Order matters only for what one source tells another: the log says which iterations
really ran (a ``solver.step(n)`` horizon beyond max_iter) and the shapes the data
layers produced; the configs say where the data lives and how it is batched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nandoctor.config.load import ConfigSet, load_configs
from nandoctor.config.net import load_net
from nandoctor.config.solver import load_solver
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Finding, InputError
from nandoctor.diagnose.inputs import RunInputs
from nandoctor.lint import lint_configs


@dataclass
class Gathered:
    inputs: RunInputs
    configs: ConfigSet | None = None
    configs_from_log: bool = False
    trace: Any = None  # nandoctor.log.trace.Trace of the main log
    debug_traces: list[Any] = field(default_factory=list)
    data: Any = None  # nandoctor.data.report.DataReport
    findings: list[Finding] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def solver(self):
        return self.configs.solvers[0] if self.configs and self.configs.solvers else None

    @property
    def train_net(self):
        if not self.configs:
            return None
        return self.configs.train_net or (self.configs.nets[0] if self.configs.nets else None)


def _configs_from_log(trace) -> ConfigSet | None:
    """The solver and nets Caffe printed at the top of the log, as if they were files in the run folder."""
    out = ConfigSet()
    solver_doc = trace.solver.document if trace.solver is not None else None
    if solver_doc is not None:
        out.add_document(solver_doc, "SolverParameter")
        out.solvers.append(load_solver(solver_doc))
    for logdoc in trace.nets:
        doc = logdoc.document
        if doc is None:
            continue
        net = load_net(doc)
        out.nets.append(net)
        if logdoc.role != "test" and out.train_net is None:
            out.train_net = net
    if not out.solvers and not out.nets:
        return None
    return out


def _horizon(trace, solver) -> int | None:
    """A ``solver.step(n)`` run goes past max_iter: evaluate the schedule over what really ran."""
    if trace is None or solver is None:
        return None
    from nandoctor.log.columns import lr_arrays, train_arrays

    # the runs' columns, not a point per display
    ends = [int(a.max()) for s in trace.segments for a in (train_arrays(s.train)[0], lr_arrays(s.lr)[0]) if len(a)]
    if not ends:
        return None
    last = max(ends)
    max_iter = int(solver.value("max_iter") or 0)
    # ``caffe train`` prints the loss of iteration max_iter itself when it stops; only more means step(n)
    return last + 1 if last > max_iter else None


def gather(inputs: RunInputs, *, scan_data: bool = True, options: dict[str, Any] | None = None) -> Gathered:
    from nandoctor.log.parser import parse_log

    g = Gathered(inputs=inputs, options=dict(options or {}), notes=list(inputs.notes))
    if inputs.log is not None:
        g.trace = parse_log(inputs.log)
    for path in inputs.debug_logs:
        try:
            g.debug_traces.append(parse_log(path))
        except InputError as exc:
            g.notes.append(f"debug log skipped: {exc}")

    files = [p for p in [inputs.solver, *inputs.nets] if p is not None]
    if files:
        g.configs = load_configs(files)
        g.notes.extend(g.configs.problems)
    elif g.trace is not None:
        g.configs = _configs_from_log(g.trace)
        g.configs_from_log = g.configs is not None

    horizon = _horizon(g.trace, g.solver)
    if horizon is not None and "iters" not in g.options:
        g.options["iters"] = horizon
        g.notes.append(
            f"the log runs to iteration {horizon - 1}, past max_iter: evaluated the lr schedule as a "
            f"solver.step({horizon}) run"
        )

    if scan_data and g.train_net is not None and inputs.data_root is not None:
        g.data = _scan(g, inputs)

    rules = select_rules()
    if g.configs is not None:
        g.findings.extend(_lint(g, rules))
    single = [r for r in rules if len(r.needs) == 1]
    if g.trace is not None:
        g.findings.extend(
            run_rules(Facts(trace=g.trace, options=g.options), [r for r in single if r.needs == ("trace",)])
        )
    # a debug run repeats the main run's symptoms; from it only the layer localisation (NAN5xx) is new
    debug_rules = [r for r in single if r.needs == ("trace",) and (g.trace is None or r.code.startswith("NAN5"))]
    for dt in g.debug_traces:
        g.findings.extend(run_rules(Facts(trace=dt, options=g.options), debug_rules))
    if g.data is not None:
        g.findings.extend(run_rules(Facts(data=g.data, options=g.options), [r for r in single if r.needs == ("data",)]))
    multi = [r for r in rules if len(r.needs) > 1 and "documents" not in r.needs]
    combined = Facts(net=g.train_net, solver=g.solver, trace=g.trace, data=g.data, options=g.options)
    g.findings.extend(run_rules(combined, multi))
    return g


def _lint(g: Gathered, rules):
    """Config rules see the shapes the data layers produce: from the log's Top shape lines, else
    from the records the data scan read (a file alone cannot give them)."""
    options = dict(g.options)
    shapes = _top_shapes(g.trace) if g.trace is not None else {}
    if not shapes and g.data is not None:
        shapes = _data_shapes(g.data)
    if shapes and "top_shapes" not in options:
        options["top_shapes"] = shapes
    return lint_configs(g.configs, options, [r for r in rules if set(r.needs) <= {"net", "solver", "documents"}])


def _data_shapes(report) -> dict[str, list[tuple[int, ...]]]:
    """The first top of each TRAIN data layer: (batch_size, *record shape) when all records agree."""
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for src in report.sources:
        if src.phase != "TRAIN" or not src.layer or not src.batch_size:
            continue
        shape = src.majority_shape or (next(iter(src.shapes)) if len(src.shapes) == 1 else None)
        if not shape:
            continue
        try:
            dims = tuple(int(x) for x in shape.split(","))
        except ValueError:
            continue
        shapes[src.layer] = [(src.batch_size, *dims)]
    return shapes


def _top_shapes(trace) -> dict[str, list[tuple[int, ...]]]:
    for seg in trace.segments:
        # net_index 0 is the TRAIN net; the TEST net's layers of the same name can have other batch sizes
        shapes = {
            ls.name: [tuple(s) for s, _count in ls.top_shapes]
            for ls in seg.layers
            if ls.top_shapes and ls.net_index == 0
        }
        if shapes:
            return shapes
    return {}


def _scan(g: Gathered, inputs: RunInputs):
    from nandoctor.data.api import scan_net

    try:
        return scan_net(g.train_net, root=str(inputs.data_root), solver=g.solver, progress=False)
    except InputError as exc:
        g.notes.append(f"data not scanned: {exc}")
        return None
    except OSError as exc:
        g.notes.append(f"data not scanned: {exc}")
        return None
