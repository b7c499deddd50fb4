"""The guard wherever a real loop calls it: AMP before/after unscale_, accumulation, closures, check_loss."""

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from nandoctor.core.types import Cause  # noqa: E402
from nandoctor.torch import NaNGuard  # noqa: E402
from tests.torch.loops import Images, SmallCNN, label_frequency_loss  # noqa: E402
from torch import nn  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def amp_loop(placement: str, data, loss_fn, epochs: int = 1):
    """The usual AMP recipe (scale, backward, unscale_, clip, step, update) with the guard's check
    before or after unscale_, on_nan="skip", and an unconditional scaler.step."""
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    guard = NaNGuard(model, opt, scaler=scaler, criterion=loss_fn, on_nan="skip", verbose=False)
    loader = guard.track(DataLoader(data, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(2)))
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = loss_fn(model(x), y)
            scaler.scale(loss).backward()
            if placement == "before":
                guard.check(loss, (x, y))
            scaler.unscale_(opt)
            if placement == "after":
                guard.check(loss, (x, y))
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)  # unconditional: the guard must make it skip
            scaler.update()
    return model, guard


@pytest.mark.parametrize("placement", ["before", "after"])
def test_amp_skip_keeps_nan_out_of_the_weights_before_or_after_unscale(placement):
    model, guard = amp_loop(placement, Images(poison={29: float("nan")}), F.cross_entropy, epochs=2)
    assert guard.events == 2  # the poisoned item, once per epoch
    assert finite(model)
    cause = guard.diagnosis.causes[0]
    assert cause.cause is Cause.BAD_INPUT
    assert cause.culprit.endswith("= dataset[29]")


@pytest.mark.parametrize("placement", ["before", "after"])
def test_amp_loss_function_nan_named_and_skipped(placement):
    data = Images(n=48)
    data.y = torch.zeros(48, dtype=torch.long)  # class 1 and 2 never occur: their count is 0
    model, guard = amp_loop(placement, data, lambda out, y: label_frequency_loss(out.float(), y))
    assert guard.events == 6 and finite(model)
    cause = guard.diagnosis.causes[0]
    assert cause.cause is Cause.LOSS_FUNCTION
    assert cause.culprit == "label_frequency_loss (Tensor.div)"


def test_gradient_accumulation_names_the_micro_batch_and_item():
    data = Images(n=64, poison={45: float("inf")})
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    guard = NaNGuard(model, opt, criterion=F.cross_entropy, on_nan="skip", verbose=False)
    loader = guard.track(DataLoader(data, batch_size=4))
    steps = 0
    for i, (x, y) in enumerate(loader):
        loss = F.cross_entropy(model(x), y) / 4
        if guard.check_loss(loss, (x, y)):
            loss.backward()
        if i % 4 == 3:  # one optimizer step per 4 micro-batches
            if guard.check():
                opt.step()
            opt.zero_grad()
            steps += 1
    assert steps == 4 and guard.skipped == 1 and finite(model)
    assert guard.diagnosis.first_nonfinite_iteration == 2  # item 45 is in micro-batch 11 = step 2
    cause = guard.diagnosis.causes[0]
    assert cause.cause is Cause.BAD_INPUT and cause.culprit == "batch[0][1] = dataset[45]"
    assert guard.facts.batch[0]["micro_batch"] == 3


def test_gradient_accumulation_replays_each_micro_batch_for_a_gradient_nan():
    class Dist(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            h = self.fc(x)
            return torch.sqrt((h - h.roll(1, 0)).pow(2).sum(1))

    torch.manual_seed(0)
    x = torch.randn(8, 4, 4)
    x[5, 1] = x[5, 0]  # micro-batch 5: two identical rows, the gradient of sqrt(0) is inf
    model = Dist()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    guard = NaNGuard(model, opt, criterion=F.mse_loss, on_nan="stop", verbose=False)
    for i in range(8):
        batch = (x[i], torch.zeros(4))
        loss = F.mse_loss(model(batch[0]), batch[1])
        if guard.check_loss(loss, batch):
            loss.backward()
        if i % 4 == 3:
            if guard.check():
                opt.step()
            opt.zero_grad()
    assert guard.diagnosis.first_nonfinite_iteration == 1
    assert guard.facts.replay["micro_batch"] == 1 and guard.facts.replay["reproduced"]
    assert guard.facts.backward["op"] == "torch.sqrt"
    assert finite(model)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(2, 3)

    def forward(self, xa, xb):
        return self.a(xa) + self.b(xb).log()  # log of a negative activation: NaN


def two_input_loop(**guard_kwargs):
    torch.manual_seed(0)
    model = TwoInputs()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = NaNGuard(model, opt, on_nan="stop", verbose=False, **guard_kwargs)
    xa, xb, y = torch.randn(8, 4), torch.rand(8, 2), torch.randint(0, 3, (8,))
    loss = F.cross_entropy(model(xa, xb), y)
    loss.backward()
    guard.check(loss, (xa, xb, y))
    return guard


def test_several_model_inputs_with_a_closure_name_the_op():
    guard = two_input_loop(closure=lambda m, b: F.cross_entropy(m(b[0], b[1]), b[2]))
    assert guard.facts.replay["reproduced"]
    assert guard.facts.forward["op"] == "torch.log" or guard.facts.forward["op"] == "Tensor.log"
    assert guard.facts.forward["source"]["function"] == "TwoInputs.forward"


def test_several_model_inputs_with_criterion_only_say_which_closure_to_pass():
    guard = two_input_loop(criterion=F.cross_entropy)
    assert guard.facts.replay["ran"] is False and "TypeError" in guard.facts.replay["reason"]
    advice = " ".join(guard.diagnosis.next_steps)
    assert "criterion(model(batch[0]), batch[1])" in advice
    assert "closure=lambda model, batch:" in advice
    assert "pass closure= or criterion=" not in advice


def test_check_loss_keeps_a_crashing_backward_from_running():
    # a dilated max-pool window that lies wholly in the padding: its output is -inf and its
    # backward would scatter into an out-of-range argmax (heap corruption); check_loss stops first
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, stride=1, padding=1, dilation=3), nn.Flatten(),
                          nn.Linear(2, 3))  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = NaNGuard(model, opt, criterion=F.cross_entropy, on_nan="skip", verbose=False)
    backwards = 0
    for _ in range(3):
        x, y = torch.randn(4, 1, 4, 4), torch.randint(0, 3, (4,))
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if guard.check_loss(loss, (x, y)):
            loss.backward()
            backwards += 1
        if guard.check(loss, (x, y)):
            opt.step()
    assert backwards == 0 and guard.skipped == 3 and finite(model)
    cause = guard.diagnosis.causes[0]
    assert cause.cause is Cause.POOLING and cause.culprit == "1"
    assert guard.facts.backward is None  # the replay did not run the backward either


def test_check_loss_raise_mode_raises_before_backward():
    from nandoctor.torch import NaNDetected

    model = SmallCNN()
    guard = NaNGuard(model, torch.optim.SGD(model.parameters(), lr=0.1), criterion=F.cross_entropy)
    x, y = torch.randn(4, 1, 6, 6), torch.randint(0, 3, (4,))
    x[2, 0, 0, 0] = float("nan")
    with pytest.raises(NaNDetected) as caught:
        guard.check_loss(F.cross_entropy(model(x), y), (x, y))
    assert caught.value.diagnosis.causes[0].culprit == "batch[0][2]"
