"""A Caffe solver file: its fields with Caffe's defaults, its solver type, the nets it
names, and exact edits to change it.

Values follow protobuf's text parser: for a singular field the *last* occurrence wins;
an unset field reads as the default declared in caffe.proto (``config.schema``), which
for most solver fields is 0 (``base_lr``, ``gamma``, ``power``, ``stepsize``,
``max_iter``). Enum values are returned by name (a value written as a number is mapped
to its name).

Net file names (``net``, ``train_net``, ``test_net``) are resolved relative to the
solver's folder. Caffe itself resolves them relative to the *process's* working
directory; runs are normally started from the solver's folder (the corpus runs and the
BVLC examples are), so that is the assumption made here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nandoctor.config import schema
from nandoctor.config.textformat import Document, Field, Message, Scalar, number
from nandoctor.core.types import Location

MESSAGE = "SolverParameter"

# The deprecated solver_type enum and the type string Caffe's upgrade maps it to.
SOLVER_TYPE_ENUM_TO_TYPE = {
    "SGD": "SGD",
    "NESTEROV": "Nesterov",
    "ADAGRAD": "AdaGrad",
    "RMSPROP": "RMSProp",
    "ADADELTA": "AdaDelta",
    "ADAM": "Adam",
}
SOLVER_TYPES = tuple(SOLVER_TYPE_ENUM_TO_TYPE.values())

_BOOL_WORDS = {"true": True, "t": True, "false": False, "f": False}


@dataclass
class NetSource:
    """Where one net of the solver comes from: a file or a message embedded in the solver."""

    field: str  # net, train_net, test_net, net_param, train_net_param, test_net_param
    path: Path | None = None
    message: Message | None = None
    location: Location | None = None


@dataclass(eq=False)  # identity semantics: rules cache analyses per solver
class Solver:
    doc: Document
    msg: Message  # the SolverParameter message (the document root)

    # --- reading fields -------------------------------------------------------------

    @property
    def path(self) -> str:
        return self.doc.path

    def field(self, name: str) -> Field | None:
        """The field that decides the value: the last occurrence (protobuf: last one wins)."""
        return self.msg.last(name)

    def fields(self, name: str) -> list[Field]:
        return self.msg.all(name)

    def is_set(self, name: str) -> bool:
        return self.msg.has(name)

    def location(self, name: str) -> Location | None:
        f = self.field(name)
        return self.doc.field_location(f) if f is not None else None

    def value(self, name: str) -> Any:
        """The explicit value, or Caffe's default; repeated fields give a list."""
        spec = schema.field_spec(MESSAGE, name)
        if spec is not None and spec.repeated:
            return [_convert(f.value, spec.type) for f in self.fields(name)]
        f = self.field(name)
        if f is None:
            if spec is None:
                return None
            return schema.default(MESSAGE, name)
        return _convert(f.value, spec.type if spec else None)

    # --- derived facts -----------------------------------------------------------------

    @property
    def solver_type(self) -> str:
        """The solver class Caffe instantiates (``type`` string, or the upgraded
        deprecated ``solver_type`` enum; ``SGD`` when neither is set).

        When both are set Caffe aborts while upgrading the file (see
        :attr:`solver_type_conflict`); the ``type`` string is reported then."""
        if self.is_set("type"):
            return str(self.value("type"))
        if self.is_set("solver_type"):
            enum = str(self.value("solver_type"))
            return SOLVER_TYPE_ENUM_TO_TYPE.get(enum, enum)
        return "SGD"

    @property
    def solver_type_conflict(self) -> bool:
        return self.is_set("type") and self.is_set("solver_type")

    def net_sources(self) -> dict[str, Any]:
        """Where the nets come from, as Caffe's Solver::InitTrainNet/InitTestNets choose.

        ``{"train": Path | Message | None, "test": [Path | Message, ...],
        "train_source": NetSource | None, "test_sources": [NetSource, ...]}``.
        The train net is the first set of train_net_param, train_net, net_param, net
        (Caffe requires exactly one). Test nets are every test_net_param, then every
        test_net, then the generic net/net_param once per remaining ``test_iter`` entry.
        """
        base = Path(self.doc.path).parent
        train: NetSource | None = None
        for name in ("train_net_param", "train_net", "net_param", "net"):
            f = self.field(name)
            if f is not None:
                train = self._source(f, base)
                break
        tests = [self._source(f, base) for f in self.fields("test_net_param")]
        tests += [self._source(f, base) for f in self.fields("test_net")]
        generic = self.field("net_param") or self.field("net")
        if generic is not None:
            extra = len(self.fields("test_iter")) - len(tests)
            tests += [self._source(generic, base) for _ in range(max(0, extra))]
        return {
            "train": _payload(train),
            "test": [_payload(t) for t in tests],
            "train_source": train,
            "test_sources": tests,
        }

    def _source(self, f: Field, base: Path) -> NetSource:
        loc = self.doc.field_location(f)
        if isinstance(f.value, Message):
            return NetSource(f.name, message=f.value, location=loc)
        text = str(f.value.value)
        p = Path(text)
        return NetSource(f.name, path=p if p.is_absolute() else base / p, location=loc)


def load_solver(doc: Document) -> Solver:
    return Solver(doc, doc.root)


# --- conversions ---------------------------------------------------------------------------


def _convert(value: Scalar | Message, type_name: str | None) -> Any:
    """A scalar as the schema type reads it; left as written when it does not fit
    (the schema validator reports those, the lr engine raises InputError)."""
    if isinstance(value, Message):
        return value
    raw = value.value
    if type_name in ("float", "double"):
        x = number(raw)
        if x is None:
            return raw
        if value.kind == "ident" and value.negative:
            x = -x  # "-inf", "-nan": protobuf negates the value it read
        return x
    if type_name == "bool":
        if value.kind == "ident":
            return _BOOL_WORDS.get(str(raw).lower(), raw)
        if value.kind == "int" and raw in (0, 1):
            return bool(raw)
        return raw
    if type_name and schema.is_enum(type_name):
        if value.kind == "int":
            name = schema.enum_value_name(type_name, int(raw))
            return name if name is not None else raw
        return raw
    return raw


def _payload(src: NetSource | None):
    if src is None:
        return None
    return src.message if src.message is not None else src.path
