"""``python3 -m tools.site [--out site-src] [--build]``: generate (and build) the rules site."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tools.site.build import REPO, build_html, write_sources


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m tools.site", description=__doc__)
    p.add_argument("--out", type=Path, default=REPO / "site-src", help="folder for mkdocs.yml and docs/")
    p.add_argument("--build", action="store_true", help="then run `mkdocs build --strict` into OUT/site")
    args = p.parse_args(argv)
    start = time.perf_counter()
    sources = write_sources(args.out)
    shown = sum(len(v) for v in sources.cases.values())
    print(
        f"{len(sources.codes)} rule pages, {shown} cases of {len(sources.cases)} rules -> {sources.folder}", flush=True
    )
    for code in sources.orphans:
        print(f"warning: tests/cases/{code}: no rule has this code", file=sys.stderr)
    if args.build:
        done = build_html(sources)
        sys.stderr.write(done.stderr)
        if done.returncode != 0:
            return done.returncode
        print(f"built {sources.folder / 'site' / 'index.html'} in {time.perf_counter() - start:.1f} s")
    return 1 if sources.orphans else 0


if __name__ == "__main__":
    sys.exit(main())
