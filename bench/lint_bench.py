"""Net lint speed: parse + net model + shapes + every net rule, beside the bare parse (the floor).

Inputs: the largest zoo net (ResNet-50 deploy, ~2.3k lines) and synthetic nets of about 1k,
7k and 20k lines built by repeating its real layer blocks (each copy renames its layers and
blobs and reads the shared input, so the net stays valid and every rule has work to do).

    python bench/lint_bench.py [--repeat 5]

Prints, per input: lines, the floor (textformat parse alone), the full pipeline time, lines/s,
and the pipeline's multiple of the floor. Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from nandoctor.config.net import load_net
from nandoctor.config.textformat import parse_text
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.rules.net.common import variants

REPO = Path(__file__).resolve().parents[1]
RESNET = "KaimingHe__deep-residual-networks__prototxt__ResNet-50-3classes-train_val__ResNet-50-deploy.prototxt"
_NAME_RE = re.compile(r'^(\s*(?:name|bottom|top):\s*")([^"]+)(")', re.MULTILINE)


def _split(text: str) -> tuple[str, list[str]]:
    """(header before the first layer, list of top-level ``layer { ... }`` blocks)."""
    starts = [m.start() for m in re.finditer(r"^layer\s*\{", text, re.MULTILINE)]
    header = text[: starts[0]]
    blocks = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    return header, blocks


def synthetic(text: str, target_lines: int, shared_input: str = "data") -> str:
    header, blocks = _split(text)
    out = [header]
    lines = header.count("\n")
    copy = 0
    while lines < target_lines:
        for block in blocks:

            def rename(m: re.Match, copy: int = copy) -> str:
                value = m.group(2)
                return m.group(0) if value == shared_input else f"{m.group(1)}{value}_{copy}{m.group(3)}"

            renamed = _NAME_RE.sub(rename, block)
            out.append(renamed)
            lines += renamed.count("\n")
            if lines >= target_lines:
                break
        copy += 1
    return "".join(out)


def pipeline(text: str) -> int:
    doc = parse_text(text, "bench.prototxt")
    net = load_net(doc)
    facts = Facts(net=net)
    variants(facts, net)  # phase variants and their shapes, cached for the rules below
    return len(list(run_rules(facts, select_rules(["NAN1"]))))


def best(fn, text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus"))
    args = ap.parse_args(argv)
    path = Path(args.corpus) / "zoo" / RESNET
    if not path.is_file():
        print(f"corpus file not found: {path}", file=sys.stderr)
        return 2
    real = path.read_text()
    inputs = [("ResNet-50 deploy", real)] + [
        (f"synthetic {n // 1000}k", synthetic(real, n)) for n in (1000, 7000, 20000)
    ]
    # the 7k net with pool1 made AVE kernel 2 stride 5 in every copy: findings with verified fixes
    bad = real.replace(
        "kernel_size: 3\n\t\tstride: 2\n\t\tpool: MAX", "kernel_size: 2\n\t\tstride: 5\n\t\tpool: AVE", 1
    )
    if bad != real:
        inputs.append(("7k, empty pools", synthetic(bad, 7000)))
    print(
        f"{'input':<18} {'lines':>7} {'floor parse s':>14} {'lint s':>9} {'lines/s':>10} {'x floor':>8} {'findings':>9}"
    )
    for label, text in inputs:
        n_lines = text.count("\n") + 1
        floor = best(lambda t: parse_text(t, "bench.prototxt"), text, args.repeat)
        full = best(pipeline, text, args.repeat)
        found = pipeline(text)
        print(
            f"{label:<18} {n_lines:>7} {floor:>14.4f} {full:>9.4f} {n_lines / full:>10.0f} {full / floor:>8.2f} {found:>9}"
        )
    print("target: a 7k-line net well under 0.2 s for the full lint")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
