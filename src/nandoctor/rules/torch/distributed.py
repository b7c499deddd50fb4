"""NAN660: under torch.distributed, the rank(s) whose local gradients or loss went non-finite first."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Cause, Evidence, Fix, Severity


@register
class TorchBadRank(Rule):
    """
    ## What it detects
    In a torch.distributed run the guard checks every rank's local gradients before the
    gradient all-reduce (a DDP comm hook) and its loss, and the ranks exchange what they
    saw when a step fails. This finding names the ranks that went non-finite first and,
    on the other ranks, carries the cause the bad rank found in its own batch.

    ## Why it leads to NaN
    The all-reduce averages every rank's gradients, so a NaN on one rank makes the
    reduced gradients NaN on all of them: every rank sees the failure, but only the
    rank that produced it can say why.

    ## How to fix
    Read the bad rank's report or bundle (``nan-step<N>-rank<R>``): it names the cause
    in that rank's batch. The other ranks' data and replays are clean.

    ## Example
    Rank 1 of 2 reads a record holding NaN; rank 0 reports "rank 1's local gradients
    went non-finite before the all-reduce: bad_input, batch[0][3] = dataset[1027]".
    """

    code = "NAN660"
    title = "A rank's local gradients went non-finite first"
    cause = Cause.UNKNOWN
    severity = Severity.INFO
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        d = f.distributed
        if not d or not d.get("bad_ranks"):
            return
        bad, me = d["bad_ranks"], d.get("rank")
        clean = [r["rank"] for r in d.get("ranks", []) if r["rank"] not in bad]
        checked = "before the gradient all-reduce" if d.get("checked_before_all_reduce") else "locally"
        verdicts = {v["rank"]: v for v in d.get("verdicts") or [] if v}
        evidence = [Evidence(f"rank(s) {bad} of {d.get('world_size')} had non-finite gradients or loss {checked}")]
        if clean:
            evidence.append(Evidence(f"rank(s) {clean} were finite locally"))
        for r in bad:
            v = verdicts.get(r)
            if v:
                evidence.append(Evidence(f"rank {r} found: {v['cause']}, culprit {v.get('culprit')}"))
        if me in bad:
            yield self.finding(
                f"step {f.step}: this rank ({me}) went non-finite first"
                + (f"; ranks {clean} were clean" if clean else ""),
                evidence=evidence,
                culprit=f"rank {me}",
                data={"confidence": 0.3, "bad_ranks": bad},
            )
            return
        first = verdicts.get(bad[0], {})
        cause = Cause(first["cause"]) if first.get("cause") in Cause._value2member_map_ else Cause.UNKNOWN
        yield self.finding(
            f"step {f.step}: rank {bad[0]}'s local gradients went non-finite {checked}; this rank ({me}) was clean"
            + (f"; rank {bad[0]} names {first['cause']}: {first.get('explanation')}" if first else ""),
            cause=cause,
            evidence=evidence,
            fix=Fix(f"see rank {bad[0]}'s report / bundle nan-step{f.step}-rank{bad[0]}", safe=False),
            culprit=f"rank {bad[0]}: {first.get('culprit')}" if first else f"rank {bad[0]}",
            data={"confidence": 0.9, "bad_ranks": bad},
        )
