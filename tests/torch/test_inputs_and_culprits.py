"""Finite but absurd records, data set indices from existing loaders, and culprits a user acts on."""

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from nandoctor.core.types import Cause  # noqa: E402
from nandoctor.torch import NaNGuard  # noqa: E402
from tests.torch.loops import Images, run  # noqa: E402
from torch import nn  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    torch.manual_seed(0)


class Table(Dataset):
    """A regression table; ``sentinel`` rows hold 1e30 in one feature (a "missing value" code)."""

    def __init__(self, n=96, sentinel=(), with_index=False):
        g = torch.Generator().manual_seed(4)
        self.x = torch.randn(n, 6, generator=g)
        self.y = self.x @ torch.randn(6, 1, generator=g)
        for i in sentinel:
            self.x[i, 2] = 1e30
        self.with_index = with_index

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return (self.x[i], self.y[i], i) if self.with_index else (self.x[i], self.y[i])


def regression(loader_or_batches, guard_factory=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    guard = NaNGuard(model, opt, criterion=F.mse_loss, on_nan="stop", verbose=False)
    loader = guard_factory(guard, loader_or_batches) if guard_factory else loader_or_batches
    for batch in loader:
        opt.zero_grad()
        loss = F.mse_loss(model(batch[0]), batch[1])
        loss.backward()
        if guard.check(loss, batch):
            opt.step()
        if guard.should_stop:
            break
    return guard


def test_finite_absurd_record_is_bad_input_named_by_dataset_index():
    loader = DataLoader(Table(sentinel=[61]), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(1))
    guard = regression(loader, lambda g, ld: g.track(ld))
    cause = guard.diagnosis.causes[0]
    assert cause.cause is Cause.BAD_INPUT, guard.diagnosis.to_dict()["causes"]
    assert cause.culprit.endswith("= dataset[61]")
    absurd = guard.facts.batch_absurd[0]
    assert absurd["dataset_indices"] == [61] and absurd["ratio"] > 1e20
    assert not guard.facts.batch  # finite: only the comparison with earlier batches tells
    codes = [f.code for f in guard.diagnosis.findings]
    assert "NAN632" in codes and "NAN620" not in codes  # not blamed on MSELoss


def test_a_merely_large_record_is_not_absurd():
    data = Table()
    data.x[61, 2] = 40.0  # an outlier, not a sentinel: training stays healthy and nothing is flagged
    guard = regression(DataLoader(data, batch_size=8, shuffle=True))
    assert guard.diagnosis is None
    assert len(guard.inputs.maxima["batch[0]"]) == 12


def test_index_tuple_batches_are_recognised():
    guard = regression(DataLoader(Table(sentinel=[13], with_index=True), batch_size=8))
    assert guard.diagnosis.causes[0].culprit == "batch[0][5] = dataset[13]"


@pytest.mark.parametrize(
    "settings",
    [
        {"shuffle": True},  # the sampler seeds itself from the global RNG
        {"shuffle": True, "generator": torch.Generator().manual_seed(7)},
        {"shuffle": True, "num_workers": 2, "generator": torch.Generator().manual_seed(7)},
        {"batch_size": 5, "drop_last": True},
    ],
)
def test_track_wraps_an_existing_loader_without_changing_its_order(settings):
    data = Images(n=40)
    kwargs = {"batch_size": 8, **settings}

    def epochs(loader, seed):
        if "generator" in settings:
            loader.generator.manual_seed(7)
        torch.manual_seed(seed)
        return [torch.cat([y for _, y in loader]) for _ in range(2)]

    model = nn.Linear(36, 3)
    guard = NaNGuard(model, torch.optim.SGD(model.parameters(), lr=0.1), verbose=False)
    original = DataLoader(data, **kwargs)
    tracked = guard.track(DataLoader(data, **kwargs))
    assert len(tracked) == len(original)
    assert [e.tolist() for e in epochs(tracked, 3)] == [e.tolist() for e in epochs(original, 3)]
    # and the recorded indices are those of the batches: their labels match the data set's
    torch.manual_seed(3)
    for x, y in tracked:
        assert data.y[tracked.indices_of((x, y))].tolist() == y.tolist()


def penalty_loop(weight, lr):
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.randn(4, 1)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def loss_fn(m, b):
        return F.mse_loss(m(b[0]), b[1]) + weight * m.weight.pow(2).sum()

    batches = [(x[i % 8 * 8 : i % 8 * 8 + 8], y[i % 8 * 8 : i % 8 * 8 + 8]) for i in range(200)]
    return run(model, opt, batches, None, forward=loss_fn)


def test_explosion_from_a_heavily_weighted_loss_term_names_the_term_and_its_weight():
    guard = penalty_loop(weight=1000.0, lr=0.01)
    cause = guard.diagnosis.causes[0]
    assert cause.cause is Cause.GRADIENT_EXPLOSION
    assert cause.culprit.startswith("loss term Tensor.sum weighted 1000")
    change = next(f for f in guard.diagnosis.findings if f.code == "NAN610").data["change"]
    assert change["setting"] == "loss_weight" and change["from"] == 1000.0 and change["to"] <= 100
    assert f"from 1000 to {change['to']:g}" in cause.fixes[0].description


def test_same_term_with_a_small_weight_is_healthy():
    guard = penalty_loop(weight=0.01, lr=0.01)
    assert guard.diagnosis is None


def test_explosion_from_weight_decay_names_the_param_group_setting():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.randn(4, 1)
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    opt = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[1].parameters(), "weight_decay": 300.0}],
                          lr=0.01)  # fmt: skip
    batches = [(x[i % 8 * 8 : i % 8 * 8 + 8], y[i % 8 * 8 : i % 8 * 8 + 8]) for i in range(200)]
    guard = run(model, opt, batches, F.mse_loss)
    cause = guard.diagnosis.causes[0]
    assert cause.cause is Cause.GRADIENT_EXPLOSION
    assert cause.culprit == "optimizer.param_groups[1]['weight_decay']"
    assert "from 300 to 10" in cause.fixes[0].description
