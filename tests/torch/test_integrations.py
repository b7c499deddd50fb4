"""The Lightning and Hugging Face callbacks, driven through stand-ins for the packages' base classes.

Neither package is installed here; the callbacks only subclass one base class each, so a
stand-in module with that class exercises all of their own logic.
"""

import pytest

torch = pytest.importorskip("torch")

import importlib  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

import torch.nn.functional as F  # noqa: E402

from nandoctor.core.types import Cause  # noqa: E402
from tests.torch.loops import CaffeAvgPool2d, Images, SmallCNN, image_batches  # noqa: E402


def fresh_import(name, monkeypatch, **fake_modules):
    for mod_name, module in fake_modules.items():
        monkeypatch.setitem(sys.modules, mod_name, module)
    monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module(name)
    monkeypatch.setitem(sys.modules, name, module)  # dropped again at teardown
    return module


def test_modules_say_what_to_install_when_packages_are_missing(monkeypatch):
    for name, blocked in (("nandoctor.torch.lightning", "lightning"), ("nandoctor.torch.huggingface", "transformers")):
        fakes = {blocked: None, "pytorch_lightning": None} if blocked == "lightning" else {blocked: None}
        with pytest.raises(ImportError, match="pip install"):
            fresh_import(name, monkeypatch, **fakes)


class LitCNN(SmallCNN):
    def training_step(self, batch, batch_idx):
        return {"loss": F.cross_entropy(self(batch[0]), batch[1])}


def test_lightning_callback_stops_the_fit_and_names_the_pooling(monkeypatch):
    pytorch = types.ModuleType("lightning.pytorch")
    pytorch.Callback = type("Callback", (), {"__init__": lambda self: None})
    package = types.ModuleType("lightning")
    package.pytorch = pytorch
    module = fresh_import("nandoctor.torch.lightning", monkeypatch, lightning=package, **{"lightning.pytorch": pytorch})
    torch.manual_seed(0)
    model = LitCNN(pool=CaffeAvgPool2d(2, 3))
    model(torch.zeros(1, 1, 6, 6))  # materialise the lazy head
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = types.SimpleNamespace(optimizers=[opt], lr_scheduler_configs=[], should_stop=False)
    callback = module.NaNGuardCallback(verbose=False)
    callback.on_fit_start(trainer, model)
    for i, batch in enumerate(image_batches(Images())):
        callback.on_train_batch_start(trainer, model, batch, i)
        opt.zero_grad()
        model.training_step(batch, i)["loss"].backward()
        callback.on_before_optimizer_step(trainer, model, opt)
        opt.step()
        if trainer.should_stop:
            break
    callback.on_fit_end(trainer, model)
    assert trainer.should_stop and i == 0
    assert callback.guard.diagnosis.causes[0].cause is Cause.POOLING
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_huggingface_callback_stops_on_a_nan_lr(monkeypatch):
    transformers = types.ModuleType("transformers")
    transformers.TrainerCallback = type("TrainerCallback", (), {})
    module = fresh_import("nandoctor.torch.huggingface", monkeypatch, transformers=transformers)
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: float("nan") if s >= 3 else 1.0)
    callback = module.NaNGuardCallback(verbose=False)
    control = types.SimpleNamespace(should_training_stop=False)
    for x, y in image_batches(Images()):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        callback.on_pre_optimizer_step(None, None, control, model=model, optimizer=opt, lr_scheduler=sched)
        opt.step()
        sched.step()
        if control.should_training_stop:
            break
    callback.on_train_end(None, None, control)
    assert callback.guard.diagnosis.first_nonfinite_iteration == 3
    assert callback.guard.diagnosis.causes[0].cause is Cause.LR_POLICY
    assert all(torch.isfinite(p).all() for p in model.parameters())
