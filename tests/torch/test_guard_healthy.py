"""Healthy loops and normal mixed-precision skips raise nothing; replays leave no trace; the actions work."""

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from nandoctor.core.types import Cause, Verdict  # noqa: E402
from nandoctor.torch import NaNDetected, NaNGuard  # noqa: E402
from nandoctor.torch.replay import replay_step  # noqa: E402
from tests.torch.loops import CaffeAvgPool2d, Images, SmallCNN, image_batches, run  # noqa: E402
from torch import nn  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    torch.manual_seed(0)


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(1))


def test_healthy_cnn_with_batchnorm_dropout_and_scheduler_raises_nothing():
    model = SmallCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=24)
    guard = run(model, opt, image_batches(Images(), epochs=3), F.cross_entropy, scheduler=sched,
                guard_kwargs={"on_nan": "raise"})  # fmt: skip
    assert guard.diagnosis is None and guard.events == 0
    assert guard.iteration == 24
    assert len(guard.monitor.totals) == 24


def test_healthy_transformer_raises_nothing():
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randint(0, 50, (4, 8), generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(15)]
    model = TinyTransformer()
    guard = run(model, torch.optim.Adam(model.parameters(), 1e-3), batches, F.cross_entropy,
                guard_kwargs={"on_nan": "raise"})  # fmt: skip
    assert guard.diagnosis is None and guard.iteration == 15


def amp_loop(model, scaler, batches, loss_fn, **guard_kwargs):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    guard = NaNGuard(model, opt, scaler=scaler, verbose=False,
                     closure=lambda m, b: loss_fn(m(b[0]), b[1]), **guard_kwargs)  # fmt: skip
    for batch in batches:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_fn(model(batch[0]), batch[1])
        scaler.scale(loss).backward()
        guard.check(loss, batch)
        scaler.step(opt)
        scaler.update()
        if guard.should_stop:
            break
    return guard


def test_amp_loop_with_normal_scaler_skips_raises_nothing():
    # 8.8 * 2**127 overflows float32: the scaler skips a few steps and halves its scale, as designed
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    sum_ce = lambda out, y: F.cross_entropy(out, y, reduction="sum")  # noqa: E731
    guard = amp_loop(SmallCNN(), scaler, list(image_batches(Images(), 8, epochs=2)), sum_ce, on_nan="raise")
    assert guard.scaler_skips >= 2
    assert guard.diagnosis is None
    assert scaler.get_scale() < 2.0**127


def test_scale_that_keeps_collapsing_is_reported():
    class Dist(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(36, 3)

        def forward(self, x):
            h = self.fc(x.flatten(1))
            return h + torch.sqrt(h - h.detach())  # value unchanged, gradient of sqrt(0) is inf

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    guard = amp_loop(Dist(), scaler, list(image_batches(Images(), 8, epochs=3)), F.cross_entropy,
                     on_nan="stop", max_scaler_skips=6)  # fmt: skip
    assert guard.should_stop
    assert guard.facts.trigger == "scale_collapse"
    assert guard.diagnosis.verdict is Verdict.DIVERGING
    assert guard.facts.scaler["consecutive_skips"] == 6
    assert "NAN611" in {f.code for f in guard.diagnosis.findings}
    assert guard.facts.backward["op"] == "torch.sqrt"


class Counting(SmallCNN):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x)


def test_replay_leaves_buffers_grads_and_rng_untouched():
    model = Counting()
    x, y = next(iter(image_batches(Images())))
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    buffers = [b.clone() for b in model.buffers()]
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    result = replay_step(model, lambda m, b: F.cross_entropy(m(b[0]), b[1]), (x, y), None, None)
    assert result["ran"] and result["reproduced"] is False
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, model.parameters(), strict=True))
    assert torch.equal(rng, torch.get_rng_state())
    assert model.calls == 1  # the replay's forward is not counted


class DropLog(nn.Module):
    """-inf exactly when dropout drops element [0, 0] of its mask: the NaN depends on the RNG."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.fc(x) + torch.log(self.drop(torch.ones_like(x))[0, 0])


def test_replay_reproduces_dropout_with_the_pre_step_rng():
    model, batch = DropLog(), torch.ones(2, 4)

    def dropped() -> bool:
        with torch.no_grad():
            return not bool(torch.isfinite(model(batch)).all())

    # a seed whose first draw drops element [0, 0] and whose second keeps it, so a replay
    # that did not restore the pre-step RNG state would come out finite
    seed = next(s for s in range(200) if torch.manual_seed(s) and dropped() and not dropped())
    guard = NaNGuard(model, torch.optim.SGD(model.parameters(), 0.1), closure=lambda m, b: m(b).sum(),
                     on_nan="stop", verbose=False)  # fmt: skip
    torch.manual_seed(seed)
    loss = model(batch).sum()
    loss.backward()
    rng_after_step = torch.get_rng_state()
    assert guard.check(loss, batch) is False
    assert guard.facts.replay["reproduced"] is True
    assert guard.facts.forward["op"] == "torch.log"
    assert torch.equal(torch.get_rng_state(), rng_after_step)


def test_skip_mode_keeps_weights_finite_even_with_unconditional_step():
    model = SmallCNN(pool=CaffeAvgPool2d(2, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    guard = NaNGuard(model, opt, criterion=F.cross_entropy, on_nan="skip", verbose=False)
    for x, y in image_batches(Images()):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        guard.check(loss, (x, y))
        opt.step()  # called regardless: the guard set the poisoned gradients to None
    assert guard.events == guard.iteration == 8
    assert guard.diagnosis.causes[0].cause is Cause.POOLING
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_raise_mode_and_context_manager():
    model = SmallCNN(pool=CaffeAvgPool2d(2, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = NaNGuard(model, opt, criterion=F.cross_entropy)
    x, y = next(iter(image_batches(Images())))
    with pytest.raises(NaNDetected) as caught, guard.step((x, y)) as step:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        step.check(loss)
    assert caught.value.diagnosis.causes[0].cause is Cause.POOLING
    assert "pooling" in str(caught.value)
    assert step.ok is None


def test_context_manager_healthy_step():
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = NaNGuard(model, opt, criterion=F.cross_entropy)
    for x, y in image_batches(Images(), epochs=1):
        with guard.step((x, y)) as step:
            F.cross_entropy(model(x), y).backward()
            if step.check(F.cross_entropy(model(x), y).detach()):
                opt.step()
        assert step.ok is True


def test_bad_action_is_rejected():
    model = SmallCNN()
    with pytest.raises(ValueError):
        NaNGuard(model, torch.optim.SGD(model.parameters(), 0.1), on_nan="ignore")


def test_replay_runs_under_the_loops_autocast_when_asked():
    class OnlyUnderAutocast(nn.Module):
        """NaN only in mixed precision: the replay must run under the same autocast to see it."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            h = self.fc(x)
            return h * torch.log(torch.zeros(())) if torch.is_autocast_enabled("cpu") else h

    results = {}
    for settings in (None, {"device_type": "cpu", "dtype": torch.bfloat16}):
        model = OnlyUnderAutocast()
        opt = torch.optim.SGD(model.parameters(), 0.1)
        guard = NaNGuard(model, opt, closure=lambda m, b: m(b).float().sum(), autocast=settings,
                         on_nan="stop", verbose=False)  # fmt: skip
        batch = torch.ones(2, 4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(batch).float().sum()
        loss.backward()
        guard.check(loss, batch)
        results[settings is not None] = guard.facts.replay["reproduced"]
    assert results == {False: False, True: True}
