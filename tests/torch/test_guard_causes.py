"""Each of the five causes, injected into a small real training loop, is named with its culprit."""

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from nandoctor.core.types import Cause, Verdict  # noqa: E402
from tests.torch.loops import (  # noqa: E402
    CaffeAvgPool2d,
    Images,
    SeqModel,
    SmallCNN,
    image_batches,
    label_frequency_loss,
    run,
)
from torch import nn  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def top(guard):
    assert guard.diagnosis is not None, "the guard saw no NaN"
    return guard.diagnosis.causes[0]


def sgd(model, lr=0.05):
    return torch.optim.SGD(model.parameters(), lr=lr)


# lr_policy ------------------------------------------------------------------------------------
def test_negative_lr_from_scheduler_is_lr_policy():
    model = SmallCNN()
    opt = sgd(model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / 5)
    guard = run(model, opt, image_batches(Images(), epochs=3), F.cross_entropy, scheduler=sched)
    cause = top(guard)
    assert cause.cause is Cause.LR_POLICY
    # the scheduler, its lambda where the user wrote it, and the step it went wrong
    assert cause.culprit.startswith("LambdaLR lr_lambdas[0] = <lambda> (test_guard_causes.py:")
    assert cause.culprit.endswith(" at step 6")
    assert guard.diagnosis.first_nonfinite_iteration == 6  # lambda(6) = -0.2
    assert "LambdaLR" in cause.explanation
    assert "negative lr" in cause.fixes[0].description and "at step 6" in cause.fixes[0].description


def test_nan_lr_from_scheduler_is_lr_policy_and_weights_stay_finite():
    model = SmallCNN()
    opt = torch.optim.SGD([{"params": model.conv.parameters()}, {"params": model.fc.parameters(), "lr": 0.01}], lr=0.05)
    before = [p.detach().clone() for p in model.parameters()]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [lambda s: 1.0, lambda s: float(torch.tensor(3.0 - s).sqrt())])
    guard = run(
        model, opt, image_batches(Images()), F.cross_entropy, scheduler=sched, steps=8, guard_kwargs={"on_nan": "skip"}
    )
    cause = top(guard)
    assert cause.cause is Cause.LR_POLICY
    assert cause.culprit.startswith("LambdaLR lr_lambdas[1] = <lambda>") and cause.culprit.endswith("at step 4")
    assert guard.diagnosis.first_nonfinite_iteration == 4
    assert guard.skipped == 4  # steps 4..7 all had a NaN lr and were skipped
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_exponentially_growing_lr_is_blamed_before_the_explosion_it_causes():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1)
    model = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 1))
    opt = sgd(model, lr=0.01)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=1.6)
    batches = [(x[i % 8 * 32 : (i % 8 + 1) * 32], y[i % 8 * 32 : (i % 8 + 1) * 32]) for i in range(200)]
    guard = run(model, opt, batches, F.mse_loss, scheduler=sched)
    assert top(guard).cause is Cause.LR_POLICY
    codes = {f.code for f in guard.diagnosis.findings}
    assert "NAN602" in codes


# gradient_explosion ---------------------------------------------------------------------------
def explosion_loop(lr):
    torch.manual_seed(0)
    x = torch.randn(256, 8) * 3
    y = x @ torch.randn(8, 1)
    model = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 1))
    batches = [(x[i % 8 * 32 : (i % 8 + 1) * 32], y[i % 8 * 32 : (i % 8 + 1) * 32]) for i in range(300)]
    return model, run(model, sgd(model, lr), batches, F.mse_loss)


def test_too_high_lr_is_gradient_explosion_with_clip_suggestion():
    model, guard = explosion_loop(lr=0.05)
    cause = top(guard)
    assert cause.cause is Cause.GRADIENT_EXPLOSION
    # what to change: the lr of the param group holding the fastest-growing weight, to a smaller value
    assert cause.culprit == "optimizer.param_groups[0]['lr']"
    explosion = next(f for f in guard.diagnosis.findings if f.code == "NAN610")
    change = explosion.data["change"]
    assert change["setting"] == "lr" and change["from"] == 0.05 and 0 < change["to"] < 0.05 / 2
    assert f"from 0.05 to {change['to']:g}" in cause.fixes[0].description
    names = {n for n, _ in model.named_parameters()}
    assert explosion.data["fastest_growing"] in names
    assert guard.facts.growth > 100
    clip = guard.facts.suggested_max_norm
    assert clip is not None and 0 < clip < guard.facts.top_params[0]["norm"]
    assert any(f"max_norm={clip:.3g}" in fix.description for fix in cause.fixes)
    # the gradient norm overflowing float32 is not mistaken for a NaN: the history is still finite
    assert all(isinstance(v, float) for v in guard.facts.grad_norms)


def test_moderate_lr_on_the_same_loop_stays_healthy():
    _, guard = explosion_loop(lr=0.002)
    assert guard.diagnosis is None
    assert guard.iteration == 300


# loss_function --------------------------------------------------------------------------------
def test_division_by_zero_count_in_loss_is_loss_function():
    data = Images(n=48)
    data.y = torch.arange(48) % 3  # every batch of 6 holds all three classes ...
    data.y[30:36] = torch.tensor([0, 0, 1, 1, 0, 1])  # ... except batch 5, which has no class 2
    model = SmallCNN()
    guard = run(model, sgd(model), image_batches(data, 6), label_frequency_loss)
    cause = top(guard)
    assert cause.cause is Cause.LOSS_FUNCTION
    assert guard.diagnosis.first_nonfinite_iteration == 5
    assert guard.facts.forward["where"] == "loss"
    assert guard.facts.forward["zero_divisor"] is True
    assert "div" in cause.culprit
    assert guard.facts.replay["reproduced"] is True


def test_log_of_zero_probability_in_loss_is_loss_function():
    def hand_nll(logits, y):
        probs = torch.softmax(logits, 1)
        return -torch.log(probs.gather(1, y[:, None])).mean()

    model = SmallCNN()
    with torch.no_grad():
        model.fc.weight.mul_(60.0)  # confident logits: some target probabilities underflow to 0
    guard = run(model, sgd(model, lr=0.0), image_batches(Images()), hand_nll)
    cause = top(guard)
    assert cause.cause is Cause.LOSS_FUNCTION
    assert guard.facts.forward["op"] == "torch.log"
    assert guard.facts.forward["zero_argument"] is True
    assert cause.culprit == "hand_nll (torch.log)"  # the user's loss function, by name
    assert "in hand_nll (test_guard_causes.py:" in cause.fixes[0].description


def test_loss_module_outside_the_model_is_named():
    class RatioLoss(nn.Module):
        def forward(self, out, y):
            return (out.pow(2).sum(1) / (y.float() - y.float())).mean()  # y - y = 0

    model = SmallCNN()
    guard = run(model, sgd(model), image_batches(Images()), RatioLoss())
    cause = top(guard)
    assert cause.cause is Cause.LOSS_FUNCTION
    assert cause.culprit == "RatioLoss.forward (Tensor.div)"
    assert "count.clamp_min(1)" in cause.fixes[0].description


# bad_input ------------------------------------------------------------------------------------
def test_nan_in_dataset_item_is_bad_input_with_dataset_index():
    data = Images(poison={13: float("nan")}, as_dict=True)
    model = SmallCNN()
    guard = run(
        model, sgd(model), image_batches(data, 4), None, forward=lambda m, b: F.cross_entropy(m(b["x"]), b["y"])
    )
    cause = top(guard)
    assert cause.cause is Cause.BAD_INPUT
    assert guard.diagnosis.first_nonfinite_iteration == 3
    entry = guard.facts.batch[0]
    assert entry["batch_indices"] == [1] and entry["dataset_indices"] == [13]
    assert cause.culprit == "batch['x'][1] = dataset[13]"


def test_inf_in_dataset_item_with_explicit_indices():
    data = Images(poison={21: float("inf")})
    model = SmallCNN()
    guard = None
    from nandoctor.torch import NaNGuard

    opt = sgd(model)
    guard = NaNGuard(model, opt, criterion=F.cross_entropy, on_nan="stop", verbose=False)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(3))
    for start in range(0, len(data), 8):
        idx = order[start : start + 8]
        x, y = data.x[idx], data.y[idx]
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if guard.check(loss, (x, y), indices=idx):
            opt.step()
        if guard.should_stop:
            break
    cause = top(guard)
    assert cause.cause is Cause.BAD_INPUT
    row = int((order[guard.diagnosis.first_nonfinite_iteration * 8 :][:8] == 21).nonzero())
    assert guard.facts.batch[0]["batch_indices"] == [row]
    assert guard.facts.batch[0]["dataset_indices"] == [21]
    assert guard.facts.batch[0]["inf"] == 1


# pooling --------------------------------------------------------------------------------------
def test_caffe_style_pooling_with_empty_window_is_pooling():
    model = SmallCNN(pool=CaffeAvgPool2d(2, 3))  # width 6: windows start at 0, 3, 6 -> the last is empty
    guard = run(model, sgd(model), image_batches(Images()), F.cross_entropy)
    cause = top(guard)
    assert cause.cause is Cause.POOLING
    assert cause.culprit == "pool"
    geometry = next(f for f in guard.diagnosis.findings if f.code == "NAN640").data["geometry"]
    assert {(w["dim"], w["window"]) for w in geometry["empty_windows"]} == {(0, 2), (1, 2)}


def test_same_pooling_without_empty_window_is_healthy():
    model = SmallCNN(pool=CaffeAvgPool2d(2, 2))
    guard = run(model, sgd(model), image_batches(Images()), F.cross_entropy)
    assert guard.diagnosis is None


def test_masked_mean_pool_over_all_padding_sequence_is_pooling():
    torch.manual_seed(0)
    x = torch.randn(5, 4, 6, 4)
    mask = torch.ones(5, 4, 6)
    mask[3, 2] = 0  # batch 3, sequence 2 is all padding
    y = torch.randint(0, 2, (5, 4))
    batches = [((x[i], mask[i]), y[i]) for i in range(5)]
    model = SeqModel()
    guard = run(model, sgd(model), batches, F.cross_entropy)
    cause = top(guard)
    assert cause.cause is Cause.POOLING
    assert cause.culprit == "pool"
    assert guard.diagnosis.first_nonfinite_iteration == 3
    assert guard.diagnosis.verdict is Verdict.NAN


# not one of the five ------------------------------------------------------------------------
def test_sqrt_gradient_at_zero_in_model_is_named_by_backward_replay():
    class Dist(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            h = self.fc(x)
            return torch.sqrt((h - h.roll(1, 0)).pow(2).sum(1))

    torch.manual_seed(0)
    x = torch.randn(4, 4, 4)
    x[2, 1] = x[2, 0]  # two identical rows: distance 0, gradient of sqrt inf
    batches = [(x[i], torch.zeros(4)) for i in range(4)]
    model = Dist()
    guard = run(model, sgd(model), batches, F.mse_loss)
    assert guard.facts.trigger == "grad"
    assert guard.facts.forward is None
    assert guard.facts.backward["op"] == "torch.sqrt"
    assert top(guard).cause is Cause.UNKNOWN


def test_loss_computed_inside_the_model_forward_is_still_loss_function():
    class WithLoss(SmallCNN):
        """Hugging Face style: forward(x, labels) returns the loss, with class weights."""

        def forward(self, x, labels):
            weight = torch.tensor([1.0, 1.0, 0.0])  # class 2 "ignored" by a zero weight
            return F.cross_entropy(super().forward(x), labels, weight=weight)

    data = Images(n=32)
    data.y = torch.arange(32) % 3
    data.y[16:24] = 2  # batch 2: only class 2, total weight 0 -> 0 / 0
    model = WithLoss()
    guard = run(model, sgd(model), image_batches(data, 8), None, forward=lambda m, b: m(b[0], b[1]))
    cause = top(guard)
    assert cause.cause is Cause.LOSS_FUNCTION
    assert guard.diagnosis.first_nonfinite_iteration == 2
    assert guard.facts.forward["op"] == "F.cross_entropy"
    assert guard.facts.forward["module"] == "<model>"
    assert cause.culprit == "WithLoss.forward (F.cross_entropy)"


def test_in_place_producer_is_found_although_it_overwrites_its_input():
    class InPlace(SmallCNN):
        def forward(self, x):
            h = self.fc(self.drop(torch.flatten(self.pool(F.relu(self.bn(self.conv(x)))), 1)))
            scale = h.detach().abs().amax(1, keepdim=True) * 0  # a zero scale
            return h.clone().div_(scale)

    model = InPlace()
    guard = run(model, sgd(model), image_batches(Images()), F.cross_entropy)
    assert guard.facts.forward["op"] == "Tensor.div_"
    assert guard.facts.forward["zero_divisor"] is True
    assert guard.facts.forward["module"] == "<model>"


def test_tracked_shuffling_sampler_names_the_dataset_item():
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler

    from nandoctor.torch import NaNGuard

    data = Images(poison={37: float("-inf")})
    model = SmallCNN()
    opt = sgd(model)
    guard = NaNGuard(model, opt, criterion=F.cross_entropy, on_nan="stop", verbose=False)
    sampler = BatchSampler(RandomSampler(data, generator=torch.Generator().manual_seed(5)), 8, False)
    for x, y in DataLoader(data, batch_sampler=guard.track(sampler)):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if guard.check(loss, (x, y)):
            opt.step()
        if guard.should_stop:
            break
    entry = guard.facts.batch[0]
    assert guard.diagnosis.first_nonfinite_iteration == 5  # not the first batch: the recorder kept pace
    assert entry["dataset_indices"] == [37]
    assert torch.isinf(x[entry["batch_indices"][0]]).any()
    assert top(guard).culprit == f"batch[0][{entry['batch_indices'][0]}] = dataset[37]"


def test_fully_masked_attention_pooling_blames_the_softmax_not_the_intended_minus_inf():
    class AttentionPool(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.score = nn.Linear(dim, 1)

        def forward(self, h, mask):
            scores = self.score(h).squeeze(-1).masked_fill(mask == 0, float("-inf"))  # -inf on purpose
            return (torch.softmax(scores, 1).unsqueeze(-1) * h).sum(1)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(4, 8)
            self.pool = AttentionPool(8)
            self.head = nn.Linear(8, 2)

        def forward(self, batch):
            x, mask = batch
            return self.head(self.pool(torch.tanh(self.embed(x)), mask))

    torch.manual_seed(0)
    x, mask, y = torch.randn(3, 4, 5, 4), torch.ones(3, 4, 5), torch.randint(0, 2, (3, 4))
    mask[1, :, 2:] = 0  # padding, fine
    mask[2, 3] = 0  # batch 2, sequence 3: nothing left to attend to
    model = Tagger()
    guard = run(model, sgd(model), [((x[i], mask[i]), y[i]) for i in range(3)], F.cross_entropy)
    assert guard.diagnosis.first_nonfinite_iteration == 2
    assert guard.facts.forward["op"] == "torch.softmax"
    assert guard.facts.forward["module"] == "pool"
    assert top(guard).cause is Cause.POOLING


def test_adam_with_zero_eps_poisons_a_weight_with_zero_gradient():
    class Gated(SmallCNN):
        def __init__(self):
            super().__init__()
            self.gate = nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return super().forward(x) + 0.0 * self.gate  # gate's gradient is always 0

    model = Gated()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=0.0)
    guard = run(model, opt, image_batches(Images()), F.cross_entropy)
    cause = top(guard)
    assert guard.diagnosis.first_nonfinite_iteration == 1  # step 0's update wrote the NaN
    assert guard.facts.nonfinite_params == ["gate"]
    assert cause.cause is Cause.GRADIENT_EXPLOSION and cause.culprit == "gate"
    assert "eps" in cause.fixes[0].description
    codes = {f.code for f in guard.diagnosis.findings}
    assert "NAN652" in codes


def test_adam_with_default_eps_and_the_same_gate_is_healthy():
    class Gated(SmallCNN):
        def __init__(self):
            super().__init__()
            self.gate = nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return super().forward(x) + 0.0 * self.gate

    model = Gated()
    guard = run(model, torch.optim.Adam(model.parameters(), lr=1e-3), image_batches(Images()), F.cross_entropy)
    assert guard.diagnosis is None and guard.iteration == 8
