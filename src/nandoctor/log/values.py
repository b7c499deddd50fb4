"""Numbers as Caffe logs print them, including every spelling of nan and inf.

glibc prints ``nan``/``-nan``/``inf``/``-inf``; MSVC runtimes print ``nan(ind)``,
``-nan(ind)`` (VS2015+) or ``1.#QNAN``/``-1.#IND``/``1.#INF`` (older CRTs). Python's
``float`` reads the glibc forms (and ``%g`` numbers) directly, so it is tried first and
the rest is only consulted when it fails.
"""

from __future__ import annotations

import math
import re

NAN = float("nan")
INF = float("inf")

_MSVC_RE = re.compile(r"^([+-]?)(?:1\.#(QNAN|SNAN|IND|INF)\d*|(nan|inf)\((?:ind|snan|qnan)\))$", re.IGNORECASE)


def parse_value(text: bytes | str) -> float | None:
    """The float a log value stands for, or None when it is not a number at all."""
    try:
        return float(text)
    except ValueError:
        pass
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    text = text.strip().rstrip(",;")
    try:
        return float(text)
    except ValueError:
        pass
    m = _MSVC_RE.match(text)
    if m is None:
        return None
    sign = -1.0 if m.group(1) == "-" else 1.0
    kind = (m.group(2) or m.group(3)).upper()
    if kind == "INF":
        return sign * INF
    return NAN


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def is_nonfinite(value: float | None) -> bool:
    """True for nan and +-inf (None, i.e. unparsed, is not counted as non-finite)."""
    return value is not None and not math.isfinite(value)
