"""The kinds of schema problem ``config.validate`` reports: one rule code each, and name suggestions."""

from __future__ import annotations

import difflib

UNKNOWN_FIELD = "NAN002"
FORK_EXTENSION = "NAN003"
MESSAGE_SCALAR_MISMATCH = "NAN004"
WRONG_LITERAL = "NAN005"
NEGATIVE_UNSIGNED = "NAN006"
INTEGER_OUT_OF_RANGE = "NAN007"
UNKNOWN_ENUM_VALUE = "NAN008"
BAD_BOOLEAN = "NAN009"
DUPLICATE_FIELD = "NAN010"
V1_TYPE_IN_V2_LAYER = "NAN011"
V2_TYPE_IN_V1_LAYER = "NAN012"
MIXED_LAYER_FORMATS = "NAN013"
UNKNOWN_LAYER_TYPE = "NAN014"
MISSING_REQUIRED = "NAN015"
UNQUOTED_STRING = "NAN016"
QUOTED_ENUM = "NAN017"
IGNORED_PARAM_BLOCK = "NAN018"

ALL_CODES = (
    UNKNOWN_FIELD, FORK_EXTENSION, MESSAGE_SCALAR_MISMATCH, WRONG_LITERAL, NEGATIVE_UNSIGNED,
    INTEGER_OUT_OF_RANGE, UNKNOWN_ENUM_VALUE, BAD_BOOLEAN, DUPLICATE_FIELD, V1_TYPE_IN_V2_LAYER,
    V2_TYPE_IN_V1_LAYER, MIXED_LAYER_FORMATS, UNKNOWN_LAYER_TYPE, MISSING_REQUIRED, UNQUOTED_STRING,
    QUOTED_ENUM, IGNORED_PARAM_BLOCK,
)  # fmt: skip


def nearest(name: str, candidates: list[str]) -> str | None:
    """The candidate ``name`` most likely meant: same letters in another case, a word cut
    short or spelled out (`kernel` -> `kernel_size`, `AVERAGE` -> `AVE`), or a close typo."""
    lowered = {c.lower(): c for c in candidates}
    low = name.lower()
    if low in lowered:
        return lowered[low]
    for c in candidates:
        cl = c.lower()
        if min(len(cl), len(low)) >= 3 and (cl.startswith(low) or low.startswith(cl)):
            return c
    close = difflib.get_close_matches(low, list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else None
