"""NAN670: the failing step does not fail again when replayed on the same weights and batch."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Cause, Evidence, Fix, Severity
from nandoctor.rules.torch.common import exploding


@register
class TorchStepDoesNotReproduce(Rule):
    """
    ## What it detects
    The guard replayed the failing step from the same weights, buffers, RNG state and
    batch, the replay ran a full forward and backward, and every value stayed finite;
    the batch was clean and the lr sane.

    ## Why it leads to NaN
    A deterministic cause (data, loss, lr, pooling, an explosion) fails again on the
    same inputs. A step that does not is transient: a hardware fault (a flipped bit in
    GPU memory, an overheating or failing device), a race in a custom kernel, or
    nondeterministic reductions at the edge of overflow. None of the five usual causes
    applies, and changing the model or the data would not help.

    ## How to fix
    Keep training (the guard skipped the step); if it recurs, run the device's memory
    test, check its temperature and error counters (``nvidia-smi -q`` ECC errors), try
    ``torch.use_deterministic_algorithms(True)``, and look at custom CUDA kernels.

    ## Example
    A long run on one GPU of a cluster produces a NaN gradient once; the bundle replayed
    elsewhere is finite.
    """

    code = "NAN670"
    title = "The failing step does not reproduce (suspected hardware fault or nondeterminism)"
    cause = Cause.UNKNOWN
    severity = Severity.WARNING
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        replay = f.replay or {}
        if not replay.get("ran") or replay.get("reproduced") is not False or replay.get("partial"):
            return
        if f.bad_batch or not f.lr_is_sane() or f.nonfinite_params:
            return
        d = f.distributed or {}
        if d and d.get("rank") not in d.get("bad_ranks", [d.get("rank")]):
            return  # another rank's gradients were bad; this rank's clean replay is expected
        if f.lag:
            return  # sync-free mode replays on later weights: a clean replay says little
        yield self.finding(
            f"step {f.step}: the replay on the same weights, RNG and batch stayed finite; "
            "suspected hardware fault or nondeterminism",
            evidence=[
                Evidence(f"the step was non-finite in its {f.trigger}; the replay of it was finite throughout"),
                Evidence("batch finite and within the range of earlier batches; lr finite and sane"),
            ],
            fix=Fix(
                "keep training (the step was skipped); if it recurs, test the device (memory test, ECC error "
                "counters, temperature) and try torch.use_deterministic_algorithms(True)",
                safe=False,
            ),
            culprit="transient (not reproducible)",
            data={"confidence": 0.5 if exploding(f) else 0.9},
        )
