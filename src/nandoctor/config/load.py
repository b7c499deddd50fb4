"""Read config files into the units the rules look at: a net, a solver and the nets it names.

A solver is recognised by its fields, not its file name; the nets a solver refers to
are read too (relative paths resolve against the solver's folder first, then the
current directory, as runs are normally started from the solver's folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nandoctor.config.textformat import Document, parse_file

SOLVER_ONLY_FIELDS = frozenset(
    {
        "base_lr",
        "lr_policy",
        "max_iter",
        "net",
        "net_param",
        "train_net",
        "train_net_param",
        "test_net",
        "test_net_param",
        "test_iter",
        "test_interval",
        "solver_type",
        "solver_mode",
        "snapshot_prefix",
        "stepsize",
        "stepvalue",
        "momentum",
        "weight_decay",
        "display",
        "iter_size",
        "clip_gradients",
    }
)
NET_ONLY_FIELDS = frozenset({"layer", "layers", "input", "input_dim", "input_shape"})


def root_type(doc: Document) -> str:
    """``SolverParameter`` or ``NetParameter``, judged by which fields the file sets."""
    names = {f.name for f in doc.root}
    if names & NET_ONLY_FIELDS:
        return "NetParameter"
    if names & SOLVER_ONLY_FIELDS:
        return "SolverParameter"
    return "NetParameter"


@dataclass
class ConfigSet:
    """Everything read for one lint/diagnose call."""

    documents: list[tuple[Document, str]] = field(default_factory=list)
    nets: list = field(default_factory=list)  # nandoctor.config.net.Net
    solvers: list = field(default_factory=list)  # nandoctor.config.solver.Solver
    train_net: object | None = None  # the net the (first) solver trains, when known
    problems: list[str] = field(default_factory=list)  # referenced files that could not be read

    def add_document(self, doc: Document, root: str) -> None:
        if all(d.path != doc.path for d, _ in self.documents):
            self.documents.append((doc, root))


def load_configs(paths: list[str | Path]) -> ConfigSet:
    """Parse the given files (and the nets their solvers name) into a ConfigSet.

    Raises InputError (via the parser) for a file given on the command line that is
    missing or malformed; a *referenced* net that cannot be read is recorded in
    ``problems`` instead, so the solver itself can still be checked.
    """
    from nandoctor.config.net import load_net, load_net_message
    from nandoctor.config.solver import load_solver
    from nandoctor.core.types import InputError

    out = ConfigSet()
    seen_nets: dict[str, object] = {}

    def add_net_file(path: Path):
        key = str(path)
        if key in seen_nets:
            return seen_nets[key]
        doc = parse_file(path)
        out.add_document(doc, "NetParameter")
        net = load_net(doc)
        seen_nets[key] = net
        out.nets.append(net)
        return net

    for given in paths:
        doc = parse_file(given)
        kind = root_type(doc)
        if kind == "NetParameter":
            if str(given) in seen_nets:
                continue
            out.add_document(doc, kind)
            net = load_net(doc)
            seen_nets[str(given)] = net
            out.nets.append(net)
            continue
        out.add_document(doc, kind)
        solver = load_solver(doc)
        out.solvers.append(solver)
        sources = solver.net_sources()
        for role in ("train", "test"):
            entries = sources.get(role) or []
            if not isinstance(entries, list):
                entries = [entries]
            for entry in entries:
                if entry is None:
                    continue
                if isinstance(entry, (str, Path)):
                    try:
                        net = add_net_file(Path(entry))
                    except InputError as exc:
                        out.problems.append(f"{doc.path}: the {role} net {str(entry)!r} cannot be read: {exc}")
                        continue
                else:
                    net = load_net_message(entry, doc)
                    out.nets.append(net)
                if role == "train" and out.train_net is None:
                    out.train_net = net
    return out
