"""Every example in docs/torch.md and in the torch package's docstrings runs, each in its own process.

The docs' examples are whole programs that assert what they show; those without a process
group run in one fresh process, each from its own file and folder; the DDP and FSDP ones,
which spawn 2 gloo ranks, in a process each. A docstring example is a snippet: it runs after a prelude that
defines the names it uses (a small model, a loader with one NaN record, ...) and, for
the loop snippets, before a check that the guard named that record.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "torch.md"
PACKAGE = ROOT / "src" / "nandoctor" / "torch"
TIMEOUT = 300  # the Lightning and Trainer examples import large packages; a hang must still end


def doc_blocks() -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    heading = {}
    for match in re.finditer(r"^```python\n", text, flags=re.M):
        before = [ln for ln in text[: match.start()].splitlines() if ln.startswith("## ")]
        heading[match.start()] = before[-1][3:] if before else "top"
    names = list(heading.values())
    return [(f"{i}-{re.sub(r'[^a-z]+', '-', names[i].lower()).strip('-')}", b) for i, b in enumerate(blocks)]


def docstring_examples(text: str) -> list[str]:
    """The indented blocks of a module docstring (4 spaces, after a blank line)."""
    doc = text.split('"""')[1]
    blocks, current = [], []
    for line in [*doc.splitlines(), ""]:
        if line.startswith("    ") or (current and not line.strip()):
            current.append(line)
        elif current:
            blocks.append(textwrap.dedent("\n".join(current)).strip())
            current = []
    return [b for b in blocks if b]


def run_program(code: str, tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    script = tmp_path / f"{name}.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    env.pop("TRANSFORMERS_VERBOSITY", None)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)  # fmt: skip


NEEDS = {"lightning": "lightning.pytorch", "hugging-face-trainer": "transformers"}
SPAWNING = ("distributeddataparallel", "fsdp")  # mp.spawn: each needs a process and a script of its own

RUNNER = """
import json, os, runpy, sys, traceback
results = {}
for path in sys.argv[1:]:
    os.chdir(os.path.dirname(path))
    try:
        runpy.run_path(path, run_name="__main__")
        results[path] = None
    except BaseException:
        results[path] = traceback.format_exc()[-3000:]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def single_process_results(tmp_path_factory):
    """The examples that need no process group, run one after the other in one fresh process (one torch
    import), each from its own file in its own folder with a fresh namespace."""
    base = tmp_path_factory.mktemp("docs")
    paths = {}
    for name, code in doc_blocks():
        if any(s in name for s in SPAWNING):
            continue
        folder = base / name
        folder.mkdir()
        (folder / "example.py").write_text(code, encoding="utf-8")
        paths[name] = str(folder / "example.py")
    (base / "runner.py").write_text(RUNNER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(base / "runner.py"), *paths.values()], cwd=base, env=env,
                         capture_output=True, text=True, timeout=2 * TIMEOUT)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    return {name: results[path] for name, path in paths.items()}


@pytest.mark.parametrize(("name", "code"), doc_blocks(), ids=[n for n, _ in doc_blocks()])
def test_docs_example_runs(name, code, tmp_path, request):
    for key, module in NEEDS.items():
        if key in name:
            pytest.importorskip(module)
    if any(s in name for s in SPAWNING):
        if not torch.distributed.is_available():
            pytest.skip("torch.distributed is not available")
        out = run_program(code, tmp_path, "example")
        assert out.returncode == 0, out.stderr[-3000:]
        return
    error = request.getfixturevalue("single_process_results")[name]
    assert error is None, error


def test_docs_hold_the_wiring_the_issue_asks_for():
    names = " ".join(n for n, _ in doc_blocks())
    for section in ("a-plain-loop", "mixed-precision", "gradient-accumulation", "lightning", "hugging-face",
                    "distributeddataparallel", "fsdp", "no-host-sync", "bundles", "data-set-indices"):  # fmt: skip
        assert section in names, section


LOOP_PRELUDE = """
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset
from nandoctor.torch import NaNGuard

torch.manual_seed(0)
x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
x[13, 1] = float("nan")
ds = TensorDataset(x, y)
loader = DataLoader(ds, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
loss_fn = F.cross_entropy
"""
NAMED_RECORD_13 = """
assert guard.diagnosis.causes[0].culprit.endswith("= dataset[13]"), guard.diagnosis.causes[0].culprit
assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
"""
DOCSTRINGS = {
    "__init__.py": (LOOP_PRELUDE, NAMED_RECORD_13),
    "guard.py": (LOOP_PRELUDE, NAMED_RECORD_13),
    "lightning.py": (
        "from lightning.pytorch import Trainer\nfrom nandoctor.torch.lightning import NaNGuardCallback\n",
        "assert any(isinstance(c, NaNGuardCallback) for c in trainer.callbacks)\n",
    ),
    "huggingface.py": (
        "from transformers import Trainer, TrainingArguments\nfrom torch import nn\n"
        "from nandoctor.torch.huggingface import NaNGuardCallback\n"
        "model = nn.Linear(2, 1)\ndata = []\nargs = TrainingArguments(output_dir='out', report_to=[], use_cpu=True)\n",
        "assert any(isinstance(c, NaNGuardCallback) for c in trainer.callback_handler.callbacks)\n",
    ),
}


LAYOUTS = {"bundle.py"}  # its indented block is a directory layout, not code


def test_every_module_with_an_example_is_listed():
    with_examples = {p.name for p in PACKAGE.glob("*.py") if docstring_examples(p.read_text(encoding="utf-8"))}
    assert with_examples - LAYOUTS <= set(DOCSTRINGS), with_examples - LAYOUTS - set(DOCSTRINGS)


@pytest.mark.parametrize("module", sorted(DOCSTRINGS))
def test_docstring_example_runs(module, tmp_path):
    if module == "lightning.py":
        pytest.importorskip("lightning.pytorch")
    if module == "huggingface.py":
        pytest.importorskip("transformers")
    prelude, check = DOCSTRINGS[module]
    examples = docstring_examples((PACKAGE / module).read_text(encoding="utf-8"))
    assert examples, module
    out = run_program("\n".join([prelude, *examples, check]), tmp_path, "snippet_" + module.removesuffix(".py"))
    assert out.returncode == 0, out.stderr[-3000:]
