"""Time to evaluate a 10,000,000-iteration learning-rate schedule, per policy, beside the floor.

The floor is the cheapest thing a vectorised schedule could do: one float32 arange of the
iterations and one multiply. Each figure is the best of a few runs after a warm-up run
(the first touch of 40-80 MB arrays costs page faults that say nothing about the engine).

    python bench/lr_bench.py [N]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from nandoctor.config import lr

CASES = {
    "fixed": dict(base_lr=0.01),
    "step": dict(base_lr=0.01, gamma=0.1, stepsize=2_500_000),
    "exp": dict(base_lr=0.01, gamma=0.9999995),
    "inv": dict(base_lr=0.01, gamma=0.0001, power=0.75),
    "multistep": dict(base_lr=0.01, gamma=0.1, stepvalues=[5_000_000, 7_000_000, 9_000_000]),
    "poly": dict(base_lr=0.01, power=0.9, max_iter=10_000_000),
    "sigmoid": dict(base_lr=0.01, gamma=0.000002, stepsize=5_000_000),
}
# Degenerate schedules that take the special-value paths (NaN, inf, negative bases).
WORST = {
    "poly past max_iter": ("poly", dict(base_lr=0.01, power=0.9, max_iter=100)),
    "poly no max_iter": ("poly", dict(base_lr=0.01, power=0.9)),
    "exp to inf": ("exp", dict(base_lr=0.01, gamma=1.001)),
}


def best_of(fn, repeat: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    floor = best_of(lambda: np.arange(n, dtype=np.float32) * np.float32(0.01))
    print(f"{n:,} iterations; floor (float32 arange + one multiply): {floor * 1000:.1f} ms")
    print(f"{'policy':<20} {'time':>10} {'x floor':>8}")
    for policy, kw in CASES.items():
        p = lr.LrParams.make(policy, **kw)
        t = best_of(lambda p=p: lr.schedule(p, n))
        print(f"{policy:<20} {t * 1000:>8.1f} ms {t / floor:>8.1f}")
    for label, (policy, kw) in WORST.items():
        p = lr.LrParams.make(policy, **kw)
        t = best_of(lambda p=p: lr.schedule(p, n))
        print(f"{label:<20} {t * 1000:>8.1f} ms {t / floor:>8.1f}")


if __name__ == "__main__":
    main()
