"""Text-format parse and schema validation speed on a ~7k-line net, beside the floors they answer to.

The brief's floor: a 7k-line net must parse in well under 0.1 s. The input is the largest zoo
net (ResNet-50 deploy, ~2.3k lines, tabs included) repeated three times. The tokenizer alone
(one regex pass over the text) is printed too, as the lower bound the parser builds on.

    python bench/textformat_bench.py [--repeat 15]

Best of ``--repeat`` runs for each figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nandoctor.config.textformat import parse_text
from nandoctor.config.tokenizer import lex
from nandoctor.config.validate import validate

REPO = Path(__file__).resolve().parents[1]
RESNET = "KaimingHe__deep-residual-networks__prototxt__ResNet-50-3classes-train_val__ResNet-50-deploy.prototxt"
FLOOR_S = 0.1


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    source = REPO.parent / "shared" / "corpus" / "zoo" / RESNET
    if not source.is_file():
        print(f"input not available: {source}", file=sys.stderr)
        return 2
    text = source.read_text() * 3
    lines = text.count("\n")
    doc = parse_text(text, "resnet50x3.prototxt", "NetParameter")
    rows = [
        ("tokenize only (regex pass)", best(lambda: lex(text), args.repeat)),
        ("parse, no schema", best(lambda: parse_text(text, root=None), args.repeat)),
        ("parse, schema-aware", best(lambda: parse_text(text, root="NetParameter"), args.repeat)),
        ("validate (parsed tree)", best(lambda: validate(doc, "NetParameter"), args.repeat)),
        (
            "parse + validate",
            best(lambda: validate(parse_text(text, root="NetParameter"), "NetParameter"), args.repeat),
        ),
    ]
    print(f"input: {RESNET} x3, {lines} lines; floor for the parse: {FLOOR_S * 1000:.0f} ms")
    for name, seconds in rows:
        print(
            f"  {name:28s} {seconds * 1000:7.1f} ms  {lines / seconds:>10,.0f} lines/s  {seconds / FLOOR_S:5.2f} x floor"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
