"""Ground truth from the real Hugging Face Trainer: tiny BERT runs on CPU, one per case.

    python3 tools/framework_lab/hf_lab.py [CASE_ID ...]

Every model is built from a BertConfig with a hand-made vocabulary of 32 token ids, so
nothing is downloaded. Each case injects one cause (or none, for the healthy controls)
the way users meet it, trains for a few seconds and keeps only the small files the
readers take (trainer_state.json of the run and its checkpoints, training_args.bin, the
TensorBoard event file) plus expected.json, in tests/fixtures/frameworks/<id>/.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import torch

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "frameworks"
VOCAB = 32
SEQ = 8


class Tokens(Dataset):
    """Random token sequences; the label is how many ids are above the middle (a count, 0..SEQ)."""

    def __init__(self, n: int, seed: int, regression: bool, bad: dict[int, float] | None = None, noisy: float = 0.0):
        g = np.random.default_rng(seed)
        self.ids = g.integers(4, VOCAB, size=(n, SEQ))
        count = (self.ids > VOCAB // 2).sum(1)
        if regression:
            self.labels = (count / SEQ * 4.0 - 2.0).astype(np.float32)
            for i, v in (bad or {}).items():
                self.labels[i] = v
        else:
            self.labels = (count > SEQ // 2).astype(np.int64)
            flip = g.random(n) < noisy
            self.labels[flip] = 1 - self.labels[flip]
        self.regression = regression

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        label = torch.tensor(self.labels[i], dtype=torch.float32 if self.regression else torch.long)
        return {
            "input_ids": torch.tensor(self.ids[i]),
            "attention_mask": torch.ones(SEQ, dtype=torch.long),
            "labels": label,
        }


def model(regression: bool, seed: int):
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=SEQ,
        num_labels=1 if regression else 2,
    )
    return BertForSequenceClassification(cfg)


# ---------------------------------------------------------------- injected causes
def naive_ce(outputs, labels, num_items_in_batch=None):
    """Cross-entropy written as -log(softmax): log(0) once a noisy label's probability underflows."""
    p = torch.softmax(outputs.logits * 8.0, -1).gather(1, labels[:, None]).squeeze(1)
    return -torch.log(p).mean()


def gaussian_nll(outputs, labels, num_items_in_batch=None):
    """Heteroscedastic loss with the variance taken raw from the head: log of a negative number."""
    mean = outputs.logits[:, 0]
    var = 0.3 - 0.3 * mean
    return (torch.log(var) + (labels - mean) ** 2 / var).mean()


def high_only_loss(outputs, labels, num_items_in_batch=None):
    """MSE over the high targets only, divided by their count: 0/0 for a batch without one."""
    mask = (labels > 0.9).float()
    return (((outputs.logits[:, 0] - labels) ** 2) * mask).sum() / mask.sum()


def growing(factor: float):
    return lambda step: factor**step


def negative_after(steps: int):
    return lambda step: 1.0 - step / steps


def nan_warmup(warmup: int):
    # an inverse-sqrt schedule written with numpy: sqrt of a negative number before the warm-up ends
    return lambda step: float(np.float64(warmup) ** 0.5 / np.sqrt(np.float64(step + 1 - warmup)))


# ---------------------------------------------------------------- cases
# split: "tune" or "held" (chosen when the case was written, before any detector tuning)
CASES: list[dict] = [
    # healthy controls
    dict(id="hf_healthy_cls", cause="healthy", split="tune", lr=1e-3, steps=60, log=5),
    dict(id="hf_healthy_reg", cause="healthy", split="tune", reg=True, lr=1e-3, steps=60, log=2, sched="cosine"),
    dict(id="hf_healthy_warmup", cause="healthy", split="held", lr=2e-3, steps=60, log=3, warmup=20),
    dict(id="hf_healthy_accum_eval", cause="healthy", split="tune", lr=1e-3, steps=40, log=4, accum=4, eval=10),
    dict(id="hf_healthy_bf16", cause="healthy", split="held", lr=1e-3, steps=50, log=5, bf16=True, tb=True),
    dict(id="hf_healthy_resumed", cause="healthy", split="held", reg=True, lr=1e-3, steps=60, log=5, resume=30),
    dict(id="hf_healthy_nofilter", cause="healthy", split="tune", lr=5e-4, steps=50, log=1, filter=False, tb=True),
    dict(id="hf_healthy_sgd", cause="healthy", split="held", reg=True, optim="sgd", lr=0.05, steps=60, log=2, clip=0),
    # the learning rate: the schedule grows, goes negative or NaN
    dict(
        id="hf_lr_exp_growth",
        cause="lr_policy",
        split="tune",
        reg=True,
        optim="sgd",
        lr=1e-3,
        steps=80,
        log=2,
        lam=("grow", 1.15),
        clip=0,
    ),
    dict(
        id="hf_lr_exp_growth_adam",
        cause="lr_policy",
        split="held",
        lr=1e-4,
        steps=80,
        log=4,
        lam=("grow", 1.2),
        tb=True,
    ),
    dict(
        id="hf_lr_negative",
        cause="lr_policy",
        split="tune",
        reg=True,
        optim="sgd",
        lr=0.05,
        steps=90,
        log=3,
        lam=("neg", 30),
        clip=0,
    ),
    dict(
        id="hf_lr_negative_accum",
        cause="lr_policy",
        split="held",
        reg=True,
        optim="sgd",
        lr=0.05,
        steps=60,
        log=2,
        accum=2,
        lam=("neg", 20),
        clip=0,
    ),
    dict(id="hf_lr_nan_warmup", cause="lr_policy", split="tune", lr=1e-3, steps=30, log=2, lam=("nanwarm", 10)),
    dict(
        id="hf_lr_exp_growth_resumed",
        cause="lr_policy",
        split="tune",
        reg=True,
        optim="sgd",
        lr=1e-3,
        steps=80,
        log=4,
        lam=("grow", 1.15),
        clip=0,
        resume=40,
    ),
    # gradient explosion: an lr too high for plain SGD without clipping
    dict(
        id="hf_explode_sgd",
        cause="gradient_explosion",
        split="tune",
        reg=True,
        optim="sgd",
        lr=0.9,
        steps=60,
        log=1,
        clip=0,
        sched="constant",
    ),
    dict(
        id="hf_explode_sgd_log5",
        cause="gradient_explosion",
        split="held",
        reg=True,
        optim="sgd",
        lr=0.8,
        steps=80,
        log=5,
        clip=0,
        sched="constant",
        tb=True,
    ),
    dict(
        id="hf_explode_sgd_accum",
        cause="gradient_explosion",
        split="tune",
        reg=True,
        optim="sgd",
        lr=0.9,
        steps=60,
        log=2,
        accum=2,
        clip=0,
        sched="constant",
        eval=10,
    ),
    dict(
        id="hf_explode_linear",
        cause="gradient_explosion",
        split="held",
        reg=True,
        optim="sgd",
        lr=1.2,
        steps=60,
        log=2,
        clip=0,
    ),
    dict(
        id="hf_explode_nofilter",
        cause="gradient_explosion",
        split="tune",
        reg=True,
        optim="sgd",
        lr=0.85,
        steps=60,
        log=3,
        clip=0,
        sched="constant",
        filter=False,
    ),
    # the loss computes NaN from finite values
    dict(
        id="hf_loss_naive_ce",
        cause="loss_function",
        split="tune",
        lr=5e-3,
        steps=120,
        log=5,
        loss="naive_ce",
        noisy=0.1,
    ),
    dict(
        id="hf_loss_gaussian_nll", cause="loss_function", split="held", reg=True, lr=2e-3, steps=80, log=2, loss="nll"
    ),
    dict(
        id="hf_loss_masked_mean", cause="loss_function", split="tune", reg=True, lr=1e-3, steps=60, log=1, loss="masked"
    ),
    dict(
        id="hf_loss_naive_ce_eval",
        cause="loss_function",
        split="held",
        lr=5e-3,
        steps=120,
        log=4,
        loss="naive_ce",
        noisy=0.1,
        eval=20,
    ),
    dict(
        id="hf_loss_nll_nofilter",
        cause="loss_function",
        split="tune",
        reg=True,
        lr=2e-3,
        steps=80,
        log=4,
        loss="nll",
        filter=False,
    ),
    # bad input: a record with a NaN/inf target
    dict(
        id="hf_bad_eval_nan",
        cause="bad_input",
        split="tune",
        reg=True,
        lr=1e-3,
        steps=60,
        log=5,
        eval=15,
        bad_eval={3: math.nan},
        filter=False,
    ),
    dict(
        id="hf_bad_eval_inf",
        cause="bad_input",
        split="held",
        reg=True,
        lr=1e-3,
        steps=60,
        log=5,
        eval=20,
        bad_eval={7: math.inf},
        filter=False,
        tb=True,
    ),
    dict(
        id="hf_bad_train_nan",
        cause="bad_input",
        split="held",
        reg=True,
        lr=1e-3,
        steps=60,
        log=5,
        bad_train={150: math.nan},
    ),
]


# second round, all in the tune part: the shapes the first round had too few of (logging_steps,
# gradient accumulation, eval strategy, resumed runs, fp16, the NaN filter on and off)
CASES += [
    dict(
        id="hf_lr_exp_growth_eval",
        cause="lr_policy",
        split="tune",
        reg=True,
        optim="sgd",
        lr=1e-3,
        steps=80,
        log=5,
        lam=("grow", 1.15),
        clip=0,
        eval=10,
    ),
    dict(
        id="hf_lr_exp_growth_accum",
        cause="lr_policy",
        split="tune",
        lr=1e-4,
        steps=80,
        log=2,
        accum=2,
        lam=("grow", 1.2),
    ),
    dict(
        id="hf_lr_negative_eval",
        cause="lr_policy",
        split="tune",
        reg=True,
        optim="sgd",
        lr=0.05,
        steps=90,
        log=5,
        lam=("neg", 30),
        clip=0,
        eval=15,
    ),
    dict(
        id="hf_lr_nan_warmup_accum",
        cause="lr_policy",
        split="tune",
        lr=1e-3,
        steps=30,
        log=1,
        accum=2,
        lam=("nanwarm", 10),
        filter=False,
    ),
    dict(
        id="hf_explode_sgd_accum4",
        cause="gradient_explosion",
        split="tune",
        reg=True,
        optim="sgd",
        lr=0.9,
        steps=60,
        log=4,
        accum=4,
        clip=0,
        sched="constant",
    ),
    dict(
        id="hf_explode_sgd_resumed",
        cause="gradient_explosion",
        split="tune",
        reg=True,
        optim="sgd",
        lr=0.9,
        steps=60,
        log=2,
        clip=0,
        sched="constant",
        resume=10,
    ),
    dict(
        id="hf_explode_sgd_eval",
        cause="gradient_explosion",
        split="tune",
        reg=True,
        optim="sgd",
        lr=1.0,
        steps=60,
        log=3,
        clip=0,
        sched="constant",
        eval=10,
    ),
    dict(
        id="hf_explode_fp16",
        cause="gradient_explosion",
        split="tune",
        reg=True,
        optim="sgd",
        lr=0.9,
        steps=60,
        log=2,
        clip=0,
        sched="constant",
        fp16=True,
    ),
    dict(
        id="hf_loss_masked_accum",
        cause="loss_function",
        split="tune",
        reg=True,
        lr=1e-3,
        steps=60,
        log=2,
        accum=2,
        loss="masked",
    ),
    dict(
        id="hf_loss_masked_nofilter_log5",
        cause="loss_function",
        split="tune",
        reg=True,
        lr=1e-3,
        steps=60,
        log=5,
        loss="masked",
        filter=False,
    ),
    dict(id="hf_loss_nll_fast", cause="loss_function", split="tune", reg=True, lr=1e-2, steps=120, log=2, loss="nll"),
    dict(
        id="hf_bad_eval_nan_filter",
        cause="bad_input",
        split="tune",
        reg=True,
        lr=1e-3,
        steps=60,
        log=2,
        eval=10,
        bad_eval={5: math.nan},
    ),
    dict(
        id="hf_bad_eval_inf_accum",
        cause="bad_input",
        split="tune",
        reg=True,
        lr=1e-3,
        steps=60,
        log=4,
        accum=2,
        eval=10,
        bad_eval={2: math.inf},
        filter=False,
    ),
    dict(
        id="hf_bad_train_inf",
        cause="bad_input",
        split="tune",
        reg=True,
        lr=1e-3,
        steps=60,
        log=5,
        bad_train={100: math.inf},
    ),
    dict(id="hf_healthy_fp16", cause="healthy", split="tune", lr=1e-3, steps=40, log=2, fp16=True),
    dict(
        id="hf_healthy_eval_resumed",
        cause="healthy",
        split="tune",
        reg=True,
        lr=1e-3,
        steps=60,
        log=3,
        eval=15,
        resume=30,
    ),
    dict(
        id="hf_healthy_accum_nofilter", cause="healthy", split="tune", lr=1e-3, steps=40, log=1, accum=2, filter=False
    ),
    dict(
        id="hf_healthy_sgd_const",
        cause="healthy",
        split="tune",
        reg=True,
        optim="sgd",
        lr=0.1,
        steps=60,
        log=1,
        clip=0,
        sched="constant",
    ),
]


def build_args(case: dict, out: Path, steps: int) -> TrainingArguments:
    kw = dict(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        learning_rate=case["lr"],
        logging_steps=case.get("log", 5),
        gradient_accumulation_steps=case.get("accum", 1),
        max_grad_norm=case.get("clip", 1.0),
        optim="sgd" if case.get("optim") == "sgd" else "adamw_torch",
        lr_scheduler_type=case.get("sched", "linear"),
        lr_scheduler_kwargs=case.get("sched_kw", {}),
        warmup_steps=case.get("warmup", 0),
        logging_nan_inf_filter=case.get("filter", True),
        bf16=case.get("bf16", False),
        fp16=case.get("fp16", False),
        use_cpu=True,
        save_strategy="steps",
        save_steps=case.get("save", 20),
        save_only_model=not case.get("resume"),
        report_to=["tensorboard"] if case.get("tb") else "none",
        seed=7,
        data_seed=7,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    if case.get("eval"):
        kw.update(eval_strategy="steps", eval_steps=case["eval"])
    return TrainingArguments(**kw)


def trainer_for(case: dict, out: Path, steps: int) -> Trainer:
    reg = case.get("reg", False)
    train = Tokens(256, 1, reg, case.get("bad_train"), case.get("noisy", 0.0))
    evalset = Tokens(64, 2, reg, case.get("bad_eval")) if case.get("eval") else None
    net = model(reg, 3)
    args = build_args(case, out, steps)
    optimizers = (None, None)
    if case.get("lam"):
        kind, k = case["lam"]
        fn = {"grow": growing, "neg": negative_after, "nanwarm": nan_warmup}[kind](k)
        opt = (torch.optim.SGD if case.get("optim") == "sgd" else torch.optim.AdamW)(net.parameters(), lr=case["lr"])
        optimizers = (opt, torch.optim.lr_scheduler.LambdaLR(opt, fn))
    loss = {"naive_ce": naive_ce, "nll": gaussian_nll, "masked": high_only_loss}.get(case.get("loss"))

    def metrics(pred):
        p, y = pred.predictions.reshape(-1), pred.label_ids.reshape(-1)
        if reg:
            return {"rmse": float(np.sqrt(np.mean((p - y) ** 2)))}
        return {}

    return Trainer(
        model=net,
        args=args,
        train_dataset=train,
        eval_dataset=evalset,
        optimizers=optimizers,
        compute_loss_func=loss,
        compute_metrics=metrics if reg and case.get("eval") else None,
    )


def keep(run: Path, dest: Path) -> None:
    """Copy only what the readers take: trainer states, the args and the event files."""
    for p in sorted(run.rglob("*")):
        rel = p.relative_to(run)
        if p.is_file() and (
            p.name in ("trainer_state.json", "training_args.bin") or p.name.startswith("events.out.tfevents")
        ):
            target = dest / rel
            if "runs" in rel.parts:
                target = dest / "runs" / p.name.split(".")[0] / ("events.out.tfevents.hf")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
    # one copy of the args is enough (every checkpoint holds the same)
    args = sorted(dest.rglob("training_args.bin"), key=lambda q: _step(q.parent))
    for extra in args[:-1]:
        extra.unlink()


def _step(folder: Path) -> int:
    tail = folder.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 10**9


def run_case(case: dict) -> None:
    dest = OUT / case["id"]
    if dest.exists():
        shutil.rmtree(dest)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "out"
        if case.get("resume"):
            # the first run stops at the checkpoint; the second resumes from it with the same args
            trainer_for(case, run, case["resume"]).train()
            trainer = trainer_for(case, run, case["steps"])
            trainer.train(resume_from_checkpoint=str(run / f"checkpoint-{case['resume']}"))
        else:
            trainer = trainer_for(case, run, case["steps"])
            trainer.train()
        if case.get("save_state"):
            trainer.save_state()
        keep(run, dest)
    expected = {
        "cause": case["cause"],
        "split": case["split"],
        "library": "transformers",
        "case": {k: _plain(v) for k, v in case.items() if k not in ("id", "cause", "split")},
    }
    (dest / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def main(argv: list[str]) -> int:
    wanted = set(argv)
    for case in CASES:
        if wanted and case["id"] not in wanted:
            continue
        print("==", case["id"], flush=True)
        run_case(case)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
