"""Option parsing shared by several commands."""

from __future__ import annotations

from nandoctor.core.types import InputError


def add_select_options(p) -> None:
    p.add_argument("--select", action="append", default=[], metavar="CODES", help="only these rule codes or prefixes")
    p.add_argument("--ignore", action="append", default=[], metavar="CODES", help="skip these rule codes or prefixes")


def split_codes(values: list[str]) -> list[str]:
    return [c.strip().upper() for v in values for c in v.split(",") if c.strip()]


def parse_input_shapes(values: list[str]) -> dict[str, tuple[int, ...]]:
    """``data=64,3,227,227`` -> {"data": (64, 3, 227, 227)}."""
    shapes: dict[str, tuple[int, ...]] = {}
    for text in values:
        name, sep, dims = text.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            shape = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
            if not shape or any(d < 0 for d in shape):
                raise ValueError
        except ValueError:
            raise InputError(f"--input-shape {text!r}: expected BLOB=N,C,H,W with non-negative integers") from None
        shapes[name.strip()] = shape
    return shapes
