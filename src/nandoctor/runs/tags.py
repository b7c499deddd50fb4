"""Which logged scalar is which: metric names (CSV columns, TensorBoard tags) to fields.

Names are matched on their last path part, lower-cased, with common decorations
removed (``train/loss``, ``Loss/train``, ``train_loss_step``, ``lr-AdamW``,
``grad_2.0_norm_total``, ``amp/scale``). Evaluation metrics are those whose name starts
or ends with ``val``, ``eval`` or ``test``.
"""

from __future__ import annotations

import re

EVAL_WORDS = ("val", "valid", "validation", "eval", "test")
_SPLIT = re.compile(r"[/._\-\s]+")


def _words(name: str) -> list[str]:
    return [w for w in _SPLIT.split(name.lower()) if w]


def eval_metric(name: str) -> bool:
    words = _words(name)
    return bool(words) and (words[0] in EVAL_WORDS or words[-1] in EVAL_WORDS)


def train_field(name: str) -> str | None:
    """ "loss", "lr", "grad_norm" or "loss_scale" for a training scalar; None for anything else."""
    words = _words(name)
    if not words or eval_metric(name):
        return None
    text = "_".join(words)
    if text.startswith("lr") or "learning_rate" in text or "learningrate" in text:
        return "lr"
    if (
        "grad" in text
        and "norm" in text
        and (
            "total" in text
            or text.endswith("grad_norm")
            or "total_norm" in text
            or words == ["grad", "norm"]
            or text.endswith("norm")
        )
    ):
        return "grad_norm"
    if "scale" in words or "loss_scale" in text or "scaler" in text:
        return "loss_scale"
    trimmed = [w for w in words if w not in ("train", "training", "step", "epoch")]
    if trimmed == ["loss"]:
        return None if words[-1] == "epoch" else "loss"
    return None
