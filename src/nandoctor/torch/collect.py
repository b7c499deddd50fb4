"""Everything the guard knows about its first failing step, gathered into TorchFacts.

Called once, on the first failure: the history kept by the always-on check, the
optimizer's and scheduler's settings (what a fix changes), the batch scans (non-finite
values, and finite rows absurd against earlier batches), and the replay of the step —
of each micro-batch under gradient accumulation, first to last, until one reproduces.
Under mixed precision a reproduced step is replayed once more in float32; under
torch.distributed the ranks exchange what each saw locally.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch
from nandoctor.torch import batch as batches
from nandoctor.torch.facts import TRIGGER_LR, TorchFacts, num
from nandoctor.torch.monitor import StepStats
from nandoctor.torch.replay import replay_step
from nandoctor.torch.source import describe

HYPERPARAMETERS = ("lr", "eps", "weight_decay", "momentum", "betas", "alpha", "rho", "lr_decay", "nesterov")
SCHEDULER_SETTINGS = ("gamma", "step_size", "milestones", "T_max", "eta_min", "max_lr", "base_lr", "total_steps",
                      "warmup_steps", "factor", "total_iters", "start_factor", "end_factor", "power", "max_lrs",
                      "base_lrs", "step_size_up", "T_0", "T_mult")  # fmt: skip


def collect(
    guard, step: int, trigger: str, stats: StepStats, micro: list, *, before_backward: bool = False, lag=None
) -> TorchFacts:
    m = guard.monitor
    facts = TorchFacts(
        step=step,
        trigger=trigger,
        loss=num(stats.loss) if stats.has_loss else None,
        model=type(guard.module).__name__,
        lrs=[num(x) for x in stats.lrs],
        lr_history=[[num(x) for x in row] for row in [*list(m.lrs)[-16:], stats.lrs]],
        lr_steps=[*list(m.steps)[-16:], step],
        scheduler=type(guard.scheduler).__name__ if guard.scheduler is not None else None,
        grad_norms=[num(x) for x in list(m.totals)[-16:]],
        micro_batches=max(1, len(micro)),
        lag=lag,
    )
    if not before_backward:
        facts.nonfinite_grads = m.nonfinite_grads()
    facts.nonfinite_params = m.nonfinite_params()
    facts.optimizer = optimizer_summary(guard.optimizer)
    facts.scheduler_info = scheduler_summary(guard.scheduler)
    facts.criterion = describe(guard.criterion) if guard.criterion is not None else None
    growth(guard, facts)
    if guard._scales:
        facts.scaler = {
            "scale": guard._scales[-1],
            "consecutive_skips": guard._consecutive_skips,
            "skips": guard.scaler_skips,
            "scale_history": list(guard._scales),
        }
    for k, (b, indices, _) in enumerate(micro):
        label = [{"micro_batch": k}] if len(micro) > 1 else [{}]
        facts.batch += [{**e, **label[0]} for e in batches.scan(b, indices)]
        if not facts.batch:
            absurd = guard.inputs.absurd_rows(b, batches.dataset_indices(b, indices))
            facts.batch_absurd += [{**e, **label[0]} for e in absurd]
    if guard.dist is not None:
        facts.distributed = guard.dist.exchange(facts, before_backward)
    _replay(guard, facts, trigger, micro, before_backward)
    if guard.dist is not None:
        guard.dist.share_verdicts(facts)
    return facts


def _replay(guard, facts: TorchFacts, trigger: str, micro: list, before_backward: bool) -> None:
    if trigger == TRIGGER_LR:
        facts.replay = {"ran": False, "reason": "the lr was non-finite; nothing to replay"}
        return
    if not micro or not guard.replay:
        facts.replay = {"ran": False, "reason": "no batch given to check()" if not micro else "replay=False"}
        return
    if facts.batch:
        facts.replay = {"ran": False, "reason": "the batch itself is non-finite"}
        return
    from nandoctor.torch.wrappers import wrappers

    forbidden = tuple(wrappers(guard.model))
    model = guard.module
    if guard.replica is not None:  # FSDP2: the sharded module's forward would all-gather on this rank alone
        model, forbidden = guard.replica, (*forbidden, guard.module)
    for k, (b, _, rng) in enumerate(micro):
        closure, partial = guard.replay_closure(b)
        # a step whose loss was already non-finite before backward() is replayed without the
        # backward: that backward is what can crash (an out-of-range pooling index)
        result = replay_step(model, closure, b, rng, guard.buffers, not before_backward, forbidden)
        if result.get("reproduced") or k == len(micro) - 1:
            break
    facts.replay = {k: result.get(k) for k in ("ran", "reproduced", "error")}
    facts.replay["partial"] = partial
    if len(micro) > 1:
        facts.replay["micro_batch"] = k
    if guard.device_check is not None:
        facts.replay["note"] = "replayed on the weights of the step that read the flag, not of the failing step"
    if result.get("forward"):
        facts.forward = {**result["forward"], "module_producer": result.get("module")}
    facts.backward = result.get("backward")
    facts.loss_terms = result.get("terms") or []
    if result.get("error"):
        facts.replay["reason"] = result["error"]
    _precision(guard, model, facts, b, rng, before_backward)


def _precision(guard, model, facts: TorchFacts, batch, rng, before_backward: bool) -> None:
    """Mixed precision: the op-level float32 recheck of the producer, and, when the guard runs the
    replay under autocast itself, the whole step again without it."""
    producer = facts.forward or {}
    op_level = producer.get("precision")
    if op_level:
        facts.precision = {**op_level, "op": producer.get("op"), "module": producer.get("module")}
    if guard.autocast is None or not facts.replay.get("reproduced"):
        return
    closure, _ = guard.replay_closure(batch, autocast=False)
    result = replay_step(model, closure, batch, rng, guard.buffers, not before_backward)
    if result.get("ran"):
        dtype = str(guard.autocast.get("dtype", "")).replace("torch.", "")
        facts.precision = {
            **(facts.precision or {"op": producer.get("op"), "module": producer.get("module")}),
            "dtype": dtype or (facts.precision or {}).get("dtype"),
            "autocast": True,
            "fp32_replay_finite": not result.get("reproduced"),
        }


def optimizer_summary(optimizer) -> dict[str, Any]:
    """The optimizer's type and the numeric hyperparameters of each param group, for the report."""
    groups = []
    for group in getattr(optimizer, "param_groups", []):
        row = {}
        for key in HYPERPARAMETERS:
            v = group.get(key)
            if isinstance(v, bool):
                row[key] = v
            elif isinstance(v, int | float):
                row[key] = num(v)
            elif isinstance(v, torch.Tensor) and v.numel() == 1:
                row[key] = num(float(v))
            elif isinstance(v, tuple | list) and all(isinstance(x, int | float) for x in v):
                row[key] = [num(x) for x in v]
        groups.append(row)
    inner = getattr(optimizer, "optimizer", None)  # wrappers such as accelerate's
    kind = type(inner if isinstance(inner, torch.optim.Optimizer) else optimizer).__name__
    return {"type": kind, "groups": groups}


def scheduler_summary(scheduler) -> dict[str, Any] | None:
    """Type, step count and settings of an lr scheduler; the lambdas of LambdaLR-like ones, by source."""
    if scheduler is None:
        return None
    settings = {}
    for key in SCHEDULER_SETTINGS:
        v = getattr(scheduler, key, None)
        if isinstance(v, int | float) and not isinstance(v, bool):
            settings[key] = num(v)
        elif isinstance(v, list | tuple) and v and all(isinstance(x, int | float) for x in v):
            settings[key] = [num(x) for x in v][:8]
    lambdas = [describe(f) for f in getattr(scheduler, "lr_lambdas", None) or []]
    last = getattr(scheduler, "last_epoch", None)
    return {"type": type(scheduler).__name__, "last_epoch": last, "settings": settings, "lambdas": lambdas}


def growth(guard, facts: TorchFacts) -> None:
    """Growth of the total and per-parameter gradient norms over the ring buffer."""
    totals = [t for t in guard.monitor.totals if math.isfinite(t)]
    if len(totals) < 4:
        return
    k = max(2, len(totals) // 4)
    baseline = statistics.median(totals[:k])
    if baseline <= 0:
        return
    facts.growth = totals[-1] / baseline
    tail = totals[-min(8, len(totals)) :]
    if len(tail) >= 3 and tail[0] > 0:
        facts.growth_per_step = (tail[-1] / tail[0]) ** (1 / (len(tail) - 1))
    healthy = sorted(t for t in totals if t <= 10 * baseline)
    if healthy:
        p90 = healthy[min(len(healthy) - 1, int(0.9 * len(healthy)))]
        facts.suggested_max_norm = float(f"{max(p90, 1e-12):.2g}")
    entries = list(guard.monitor.per_param)
    if len(entries) >= 4:
        group_of = _group_of(guard)
        early = [guard.monitor.named_norms(e) for e in entries[:k]]
        late = guard.monitor.named_norms(entries[-1])
        rows = []
        for name, norm in late.items():
            base = statistics.median([e[name] for e in early if name in e] or [0.0])
            if base > 0 and math.isfinite(norm):
                row = {"name": name, "growth": norm / base, "norm": norm, "baseline": base}
                row["group"] = group_of.get(name)
                rows.append(row)
        rows.sort(key=lambda r: -r["growth"])
        facts.top_params = rows[:5]


def _group_of(guard) -> dict[str, int]:
    index = {id(p): i for i, g in enumerate(guard.optimizer.param_groups) for p in g["params"]}
    return {n: index[id(p)] for n, p in zip(guard.monitor.names, guard.monitor.params, strict=True) if id(p) in index}
