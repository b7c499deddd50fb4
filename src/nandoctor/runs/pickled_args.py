"""The fields of a ``training_args.bin`` without unpickling it.

The Trainer saves its ``TrainingArguments`` with ``torch.save``: a zip archive whose
``data.pkl`` is a pickle of the dataclass. Unpickling would import and run whatever the
file names, so this module walks the pickle opcodes with :mod:`pickletools` on a small
stack of plain values instead. Strings, numbers, booleans, None, lists, tuples and dicts
are rebuilt; an object built from a named class with one plain argument (the enums:
``IntervalStrategy("steps")``) becomes that argument; anything else becomes an
:class:`Opaque` placeholder. The instance's ``BUILD`` state is the dict of fields.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nandoctor.core.types import InputError

PLAIN = (str, int, float, bool, type(None))
MAX_BYTES = 8 << 20  # an args pickle is a few KB; anything larger is not one


@dataclass(frozen=True)
class Opaque:
    """A value the file builds from code (a class instance, a tensor): named, never made."""

    name: str


class _Mark:
    pass


MARK = _Mark()


def read_pickled_args(path: str | Path) -> dict[str, Any]:
    """The plain fields of the pickled object in ``path`` (a torch zip archive or a raw pickle)."""
    p = Path(path)
    try:
        raw = p.read_bytes()[: MAX_BYTES + 1]
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", str(p)) from None
    if len(raw) > MAX_BYTES:
        raise InputError("too large for a pickled arguments file", str(p))
    if raw[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    raise InputError("zip archive without a data.pkl", str(p))
                raw = zf.read(name)
        except zipfile.BadZipFile:
            raise InputError("not a readable zip archive", str(p)) from None
    fields = fields_of(raw)
    if fields is None:
        raise InputError("no object state found in the pickle", str(p))
    return {k: v for k, v in fields.items() if isinstance(k, str) and _plain(v)}


def _plain(v: Any) -> bool:
    if isinstance(v, PLAIN):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    return False


def fields_of(data: bytes) -> dict[Any, Any] | None:
    """The state dict given to the outermost object's BUILD, or None when there is none."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    state: dict[Any, Any] | None = None
    try:
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name in ("PROTO", "FRAME", "STOP"):
                continue
            if name in (
                "SHORT_BINUNICODE",
                "BINUNICODE",
                "BINUNICODE8",
                "UNICODE",
                "SHORT_BINSTRING",
                "BINSTRING",
                "STRING",
            ) or name in ("BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG", "BINFLOAT", "FLOAT"):
                stack.append(arg)
            elif name in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"):
                stack.append(Opaque("bytes"))
            elif name == "NEWTRUE":
                stack.append(True)
            elif name == "NEWFALSE":
                stack.append(False)
            elif name == "NONE":
                stack.append(None)
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("EMPTY_SET",):
                stack.append(set())
            elif name == "MARK":
                stack.append(MARK)
            elif name in ("TUPLE", "LIST", "DICT", "FROZENSET"):
                items = _pop_mark(stack)
                if name == "DICT":
                    stack.append(dict(zip(items[::2], items[1::2], strict=False)))
                elif name == "LIST":
                    stack.append(items)
                else:
                    stack.append(tuple(items))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                items, stack[-n:] = stack[-n:], []
                stack.append(tuple(items))
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                _setitem(stack[-1], key, value)
            elif name == "SETITEMS":
                items = _pop_mark(stack)
                for key, value in zip(items[::2], items[1::2], strict=False):
                    _setitem(stack[-1], key, value)
            elif name == "APPEND":
                value = stack.pop()
                if isinstance(stack[-1], list):
                    stack[-1].append(value)
            elif name in ("APPENDS", "ADDITEMS"):
                items = _pop_mark(stack)
                if isinstance(stack[-1], list):
                    stack[-1].extend(items)
            elif name in ("GLOBAL", "INST"):
                stack.append(Opaque(str(arg).replace(" ", ".")))
            elif name == "STACK_GLOBAL":
                qual, module = stack.pop(), stack.pop()
                stack.append(Opaque(f"{module}.{qual}"))
            elif name in ("REDUCE", "NEWOBJ"):
                args, func = stack.pop(), stack.pop()
                stack.append(_construct(func, args))
            elif name == "NEWOBJ_EX":
                _kwargs, args, cls = stack.pop(), stack.pop(), stack.pop()
                stack.append(_construct(cls, args))
            elif name == "BUILD":
                value = stack.pop()
                if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], dict):
                    value = value[0]  # (state, slotstate)
                if isinstance(value, dict) and state is None and len(stack) == 1:
                    state = value
            elif name in ("BINPERSID", "PERSID"):
                stack.pop() if name == "BINPERSID" else None
                stack.append(Opaque("persistent"))
            elif name in ("MEMOIZE",):
                memo[len(memo)] = stack[-1]
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                stack.append(memo.get(int(arg), Opaque("memo")))
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                _pop_mark(stack)
            elif name == "DUP":
                stack.append(stack[-1])
            else:
                break  # an opcode this reader does not model: keep what was read so far
    except (ValueError, IndexError, TypeError, KeyError):
        pass  # a truncated or odd pickle: what was rebuilt before the problem still counts
    if state is None:
        state = next((v for v in reversed(stack) if isinstance(v, dict)), None)
    return state


def _pop_mark(stack: list[Any]) -> list[Any]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    raise ValueError("no mark")


def _setitem(target: Any, key: Any, value: Any) -> None:
    if isinstance(target, dict) and isinstance(key, PLAIN):
        target[key] = value


def _construct(func: Any, args: Any) -> Any:
    """An enum member (one plain argument) reads as its value; anything else stays opaque."""
    if isinstance(args, tuple) and len(args) == 1 and isinstance(args[0], (str, int, float)):
        return args[0]
    name = func.name if isinstance(func, Opaque) else "object"
    return Opaque(name)
