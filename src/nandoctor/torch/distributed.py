"""The guard under torch.distributed: one decision for all ranks, the rank that went bad first named.

Under DistributedDataParallel the gradients every rank checks are the all-reduced ones,
identical on all ranks, so every rank reaches the same decision with no collective of
the guard's own: a NaN in one rank's local gradients makes the reduced gradients NaN
everywhere. Which rank it came from is seen before the reduction by a DDP comm hook
(a finite check of each bucket, on the device, then the usual all-reduce). Without
DDP (gradients reduced by hand, FSDP) every ``check`` makes one all-reduce of three
flags. ``check_loss`` always makes one all-reduce of one flag, so that all ranks skip
``backward()`` together.

Only when a step fails do the ranks exchange what each saw locally (one all-reduce)
and, after each replayed its own batch on its eager module (no collective on one
rank alone), their verdicts (one all_gather_object); every rank then reports all of
them and writes its own bundle.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist

import torch


def _bucket_hook(state: DistributedCheck, bucket):
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    flag = torch.isfinite(bucket.buffer()).all().logical_not()
    state.local_grads_bad.logical_or_(flag.to(state.local_grads_bad.device))
    return allreduce_hook(None, bucket)


class DistributedCheck:
    @classmethod
    def create(cls, guard, required: bool = False) -> DistributedCheck | None:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            if required:
                raise ValueError("distributed=True needs an initialised torch.distributed process group of 2+ ranks")
            return None
        return cls(guard)

    def __init__(self, guard):
        from nandoctor.torch.wrappers import wrappers

        self.guard = guard
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        params = guard.monitor.params
        self.device = params[0].device if params else torch.device("cpu")
        self.local_grads_bad = torch.zeros((), dtype=torch.bool, device=self.device)
        self.local: tuple[bool, bool, bool] = (False, False, False)
        self.collectives = 0  # the guard's own collectives so far (what the docs promise is counted)
        self.hooked = False
        ddp = next((w for w in wrappers(guard.model) if type(w).__name__ == "DistributedDataParallel"), None)
        if ddp is not None:
            try:
                ddp.register_comm_hook(self, _bucket_hook)
                self.hooked = True
            except RuntimeError:  # the loop registered its own comm hook: fall back to an all-reduce per step
                self.hooked = False

    def _all_reduce(self, values: list[float], op=dist.ReduceOp.MAX) -> list[float]:
        t = torch.tensor(values, dtype=torch.float32, device=self.device)
        dist.all_reduce(t, op=op)
        self.collectives += 1
        return t.tolist()

    def any_rank(self, bad: bool) -> bool:
        """check_loss: True on every rank when any rank's loss is non-finite."""
        self.local = (False, bad, False)
        return bool(self._all_reduce([float(bad)])[0])

    def agree(self, lr_bad: bool, loss_bad: bool, grad_bad: bool) -> tuple[bool, bool, bool]:
        """The step's decision, the same on every rank."""
        self.local = (lr_bad, loss_bad, grad_bad)
        if self.hooked:
            # reduced gradients and the lr are the same on all ranks; a loss that is non-finite on
            # one rank alone with finite gradients cannot decide alone (the others would not know)
            if not (lr_bad or grad_bad):
                self.local_grads_bad.zero_()
            return lr_bad, loss_bad and grad_bad, grad_bad
        lr, loss, grad = self._all_reduce([float(lr_bad), float(loss_bad), float(grad_bad)])
        return bool(lr), bool(loss), bool(grad)

    def exchange(self, facts, before_backward: bool) -> dict[str, Any]:
        """Every rank's local view of the failing step (all ranks are here together)."""
        local_grads = bool(self.local_grads_bad) if self.hooked else self.local[2]
        self.local_grads_bad.zero_()
        mine = [float(local_grads and not before_backward), float(self.local[1]), float(bool(facts.batch)),
                float(bool(facts.batch_absurd))]  # fmt: skip
        table = [0.0] * (4 * self.world)
        table[4 * self.rank : 4 * self.rank + 4] = mine
        table = self._all_reduce(table, dist.ReduceOp.SUM)
        ranks = []
        for r in range(self.world):
            grads, loss, batch, absurd = (bool(v) for v in table[4 * r : 4 * r + 4])
            ranks.append({"rank": r, "grads": grads, "loss": loss, "batch": batch, "absurd": absurd})
        if self.hooked:
            bad = [row["rank"] for row in ranks if row["grads"] or row["loss"]]
        else:
            # without the comm hook the gradients were checked after they were reduced, non-finite
            # on every rank alike: only a rank's own loss or batch tells where the NaN came from
            bad = [row["rank"] for row in ranks if row["loss"] or row["batch"] or row["absurd"]]
            bad = bad or [row["rank"] for row in ranks if row["grads"]]
        return {
            "world_size": self.world,
            "rank": self.rank,
            "comm_hook": self.hooked,
            "ranks": ranks,
            "bad_ranks": bad,
            "checked_before_all_reduce": self.hooked,
        }

    def share_verdicts(self, facts) -> None:
        """Each rank's own top cause, so that every rank's report can say what the bad rank found."""
        from nandoctor.torch.diagnosis import diagnose_facts

        top = diagnose_facts(facts).causes[0]
        mine = {"rank": self.rank, "cause": top.cause.value, "culprit": top.culprit, "explanation": top.explanation}
        everyone: list[Any] = [None] * self.world
        dist.all_gather_object(everyone, mine)
        self.collectives += 1
        facts.distributed["verdicts"] = everyone
