"""Every ``console`` example in docs/frameworks.md runs and shows what the page says."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from nandoctor.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "frameworks.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def examples() -> list[tuple[str, list[str]]]:
    out = []
    for block in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, *shown = chunk.rstrip("\n").split("\n")
            out.append((command, [s.strip() for s in shown if s.strip() and s.strip() != "..."]))
    return out


def flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at the terminal width


def test_the_page_has_examples_for_each_kind_of_run():
    commands = " ".join(c for c, _ in examples())
    for name in ("hf_", "pl_", "tb_", "pasted/"):
        assert name in commands


@pytest.mark.parametrize("command,shown", examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_example(command, shown, capsys, monkeypatch):
    if "/tb_" in command:
        pytest.importorskip("tensorboard")
    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)
    assert argv[0] == "nandoctor"
    main(argv[1:])
    out = flat(capsys.readouterr().out)
    for line in shown:
        assert flat(line) in out, line
