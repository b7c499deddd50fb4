"""Replay one poisoned step with hooks to find where the first non-finite value was *made*.

The always-on check only sees that the loss or a gradient is NaN. To name the cause
we run the same batch again from the pre-step state (RNG and buffers as they were
before the step's forward) and watch every module and every torch function call:
the producer is the first one whose output holds NaN/inf while all of its inputs
were finite; everything after it merely propagates. If the forward pass stays finite
we run the backward pass with a hook on every autograd node and name the first node
that turns finite incoming gradients into non-finite ones. Afterwards the model's
buffers, plain Python attributes of its modules, gradients and the RNG are put back,
so the replay leaves no trace.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from typing import Any

from torch.overrides import TorchFunctionMode

import torch
from nandoctor.torch.batch import tensors
from nandoctor.torch.source import user_frame

POOL_ATTRS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "count_include_pad", "output_size")
# Ops that write ±inf on purpose (attention masks): an inf they make is not a producer.
MASKING = {"masked_fill", "masked_fill_", "where", "full", "full_like", "new_full", "fill_", "fill"}
DIVISIONS = {"div", "div_", "true_divide", "__truediv__", "__rtruediv__", "__itruediv__", "reciprocal"}
MULTIPLY = {"mul", "__mul__", "__rmul__", "multiply"}
LOW_PRECISION = (torch.float16, torch.bfloat16)


def capture_rng() -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class BufferSnapshot:
    """Copies of a model's buffers (BatchNorm statistics and the like), refreshed in place.

    The list of buffers is discovered once (walking the module tree costs more than
    copying small buffers); ``stale()`` tells whether a module has since replaced a
    buffer object, in which case the snapshot is refreshed before it is trusted.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.names: list[str] = []
        self.sources: list[torch.Tensor] = []
        self.copies: list[torch.Tensor] = []

    def stale(self) -> bool:
        current = [b for _, b in self.model.named_buffers()]
        return len(current) != len(self.sources) or any(a is not b for a, b in zip(current, self.sources, strict=True))

    def _discover(self) -> None:
        named = list(self.model.named_buffers())
        self.names = [n for n, _ in named]
        self.sources = [b for _, b in named]
        self.copies = [b.detach().clone() for b in self.sources]

    def take(self) -> None:
        if not self.copies and not self.sources:
            self._discover()
        elif self.copies:
            with torch.no_grad():
                torch._foreach_copy_(self.copies, self.sources)

    def refresh(self) -> None:
        self._discover()

    def restore(self) -> None:
        named = dict(self.model.named_buffers())
        with torch.no_grad():
            for name, copy in zip(self.names, self.copies, strict=True):
                if name in named and named[name].shape == copy.shape:
                    named[name].copy_(copy)

    def as_dict(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.copies, strict=True))


SIMPLE = (bool, int, float, str, type(None))


def python_state(model: torch.nn.Module) -> list[tuple[torch.nn.Module, dict[str, Any]]]:
    """Plain Python attributes of every module (step counters, flags, cached sizes).

    Buffers are not the only state a forward can change; modules that count their calls
    or remember the last input size keep it in ordinary attributes.
    """
    out = []
    for module in model.modules():
        simple = {k: v for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, SIMPLE)}
        if simple:
            out.append((module, simple))
    return out


def restore_python_state(saved: list[tuple[torch.nn.Module, dict[str, Any]]]) -> None:
    for module, simple in saved:
        for key, val in simple.items():
            setattr(module, key, val)


def _nonfinite_count(objs) -> tuple[int, int]:
    nan = inf = 0
    for _, t in tensors(objs):
        if t.is_floating_point() or t.is_complex():
            d = t.detach()
            nan += int(torch.isnan(d).sum())
            inf += int(torch.isinf(d).sum())
    return nan, inf


def _all_finite(objs) -> bool:
    for _, t in tensors(objs):
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t.detach()).all()):
            return False
    return True


def _has_nan(objs) -> bool:
    for _, t in tensors(objs):
        if (t.is_floating_point() or t.is_complex()) and bool(torch.isnan(t.detach()).any()):
            return True
    return False


def _absmax(objs) -> float:
    """Largest finite magnitude among the tensors (±inf written on purpose is left out)."""
    best = 0.0
    for _, t in tensors(objs):
        if (t.is_floating_point() or t.is_complex()) and t.numel():
            d = t.detach().abs()
            d = d[torch.isfinite(d)]
            if d.numel():
                best = max(best, float(d.max()))
    return best


def _shapes(objs) -> list[list[int]]:
    return [list(t.shape) for _, t in tensors(objs)][:4]


LOSS_OPS = {"cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
            "poisson_nll_loss", "gaussian_nll_loss", "ctc_loss", "margin_ranking_loss", "hinge_embedding_loss",
            "multilabel_margin_loss", "soft_margin_loss", "multilabel_soft_margin_loss", "cosine_embedding_loss",
            "multi_margin_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss", "mse_loss", "l1_loss",
            "smooth_l1_loss", "huber_loss"}  # fmt: skip


def is_loss_op(op: str) -> bool:
    """torch.nn.functional's loss functions (F.cross_entropy, ...), by the name op_name gives them."""
    return op.startswith("F.") and op[2:] in LOSS_OPS


def op_name(func) -> str:
    name = getattr(func, "__name__", repr(func))
    module = getattr(func, "__module__", None)
    if module in ("torch._C._nn", "torch.nn.functional"):
        return f"F.{name}"
    if module == "torch._C._linalg":
        return f"torch.linalg.{name}"
    if module is None or module.startswith("torch._C"):
        return f"Tensor.{name}"
    if module == "torch":
        return f"torch.{name}"
    return f"{module}.{name}"


class _Watch:
    """Bookkeeping shared by the module hooks and the function mode during one replay."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.names = {m: n for n, m in model.named_modules()}
        self.stack: list[torch.nn.Module] = []
        self.model_done = False
        # a module of the model has run: Lightning's training_step calls submodules, never the root's forward
        self.module_ran = False
        self.forward: dict[str, Any] | None = None
        self.nan_forward: dict[str, Any] | None = None
        self.module: dict[str, Any] | None = None
        self.origin: dict[Any, dict[str, Any]] = {}
        self.terms: list[dict[str, Any]] = []  # constant-weighted terms of the loss (w * term)

    def label(self, module: torch.nn.Module) -> str:
        name = self.names.get(module)
        if name is None:
            return f"<{type(module).__name__}>"
        return name or "<model>"

    def where(self, op: str = "") -> str:
        """Where an op ran: "loss" (a loss module or loss function, also one called inside
        the model's forward as Hugging Face models do), "model", or "input" (before the model)."""
        innermost = self.stack[-1] if self.stack else None
        if innermost is not None and innermost not in self.names and type(innermost).__name__.endswith("Loss"):
            return "loss"
        if is_loss_op(op):
            return "loss"
        if any(m in self.names for m in self.stack):
            return "model"
        return "loss" if self.model_done or self.module_ran else "input"

    def context(self, op: str = "") -> dict[str, Any]:
        return {
            "where": self.where(op),
            "module": self.label(self.stack[-1]) if self.stack else None,
            "module_type": type(self.stack[-1]).__name__ if self.stack else None,
            "stack": [[self.label(m), type(m).__name__] for m in self.stack],
        }

    # module hooks -------------------------------------------------------------
    def pre(self, module, args):
        self.stack.append(module)

    def post(self, module, args, output):
        if self.stack and self.stack[-1] is module:
            self.stack.pop()
        if self.module is None and not _all_finite(output) and _all_finite(args):
            entry = {
                "module": self.label(module),
                "module_type": type(module).__name__,
                "in_model": module in self.names,
                "input_shape": _shapes(args)[0] if _shapes(args) else [],
                "input_absmax": _absmax(args),
                "params_finite": _all_finite(list(module.parameters(recurse=False))),
                "attrs": {a: _plain(getattr(module, a)) for a in POOL_ATTRS if hasattr(module, a)},
            }
            entry["output_nan"], entry["output_inf"] = _nonfinite_count(output)
            self.module = entry
        if module is self.model:
            self.model_done = True
        elif module in self.names:
            self.module_ran = True

    # function mode ------------------------------------------------------------
    def after_op(self, func, args, kwargs, out, before: tuple[bool, bool] | None = None) -> None:
        """Judge one op; ``before`` is (inputs finite, inputs hold NaN) taken before an in-place op."""
        if not isinstance(out, torch.Tensor | list | tuple):
            return
        op = op_name(func)
        for _, t in tensors(out):
            if t.grad_fn is not None and t.grad_fn not in self.origin:
                self.origin[t.grad_fn] = {"op": op, **self.context(op), "source": user_frame(3)}
        if self.model_done and getattr(func, "__name__", "") in MULTIPLY and len(self.terms) < 16:
            self._weighted_term(args, out)
        if (self.forward is not None and self.nan_forward is not None) or _all_finite(out):
            return
        out_nan = _has_nan(out)
        masking = not out_nan and getattr(func, "__name__", "") in MASKING
        finite_in = before[0] if before is not None else None
        if (
            self.forward is None
            and not masking
            and (finite_in if finite_in is not None else _all_finite((args, kwargs)))
        ):
            self.forward = self._entry(func, op, args, kwargs, out, True)
        if self.nan_forward is None and out_nan and not (before[1] if before is not None else _has_nan((args, kwargs))):
            self.nan_forward = self._entry(func, op, args, kwargs, out, finite_in)

    def _weighted_term(self, args, out) -> None:
        """``w * term`` with a constant w after the model ran: a weighted term of the loss."""
        if len(args) != 2 or not isinstance(out, torch.Tensor) or out.grad_fn is None:
            return
        weight, term = (args[1], args[0]) if isinstance(args[1], int | float) else (args[0], args[1])
        if isinstance(weight, torch.Tensor) and weight.numel() == 1 and not weight.requires_grad:
            weight = float(weight)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight in (0, 1):
            return
        if not isinstance(term, torch.Tensor) or term.grad_fn is None:
            return
        origin = self.origin.get(term.grad_fn, {})
        value = float(term.detach().float().sum()) if term.numel() <= 1 else None
        self.terms.append({"weight": float(weight), "op": origin.get("op"), "value": value, "source": user_frame(4)})

    def _entry(self, func, op: str, args, kwargs, out, inputs_finite: bool | None) -> dict[str, Any]:
        name = getattr(func, "__name__", "")
        entry = {"op": op, **self.context(op), "input_absmax": _absmax((args, kwargs))}
        entry["source"] = user_frame(4)
        precision = _precision(func, args, kwargs, out)
        if precision:
            entry["precision"] = precision
        entry["inputs_finite"] = _all_finite((args, kwargs)) if inputs_finite is None else inputs_finite
        entry["input_shapes"] = _shapes((args, kwargs))
        entry["output_nan"], entry["output_inf"] = _nonfinite_count(out)
        if name in DIVISIONS and len(args) >= 2 and isinstance(args[1], torch.Tensor | int | float):
            entry["zero_divisor"] = bool((torch.as_tensor(args[1]) == 0).any())
        if name in ("log", "log_", "log2", "log10", "log1p") and args and isinstance(args[0], torch.Tensor):
            entry["zero_argument"] = bool((args[0] == 0).any())
        return entry

    def producer(self) -> dict[str, Any] | None:
        """The first op that made a non-finite value from finite inputs; when the only ±inf
        before the NaN were written on purpose (masking with -inf), the first NaN maker."""
        return self.forward if self.forward is not None else self.nan_forward


def _upcast(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().float() if obj.dtype in LOW_PRECISION else obj.detach()
    if isinstance(obj, list | tuple):
        return type(obj)(_upcast(x) for x in obj)
    if isinstance(obj, dict):
        return {k: _upcast(v) for k, v in obj.items()}
    return obj


def _precision(func, args, kwargs, out) -> dict[str, Any] | None:
    """For an op whose non-finite output is float16/bfloat16 (autocast, or low-precision inputs):
    the same op on the same inputs in float32, to tell a precision overflow from a real one."""
    dtypes = {t.dtype for _, t in tensors(out)}
    low = [d for d in LOW_PRECISION if d in dtypes]
    if not low or _in_place(func):
        return None
    device = next((t.device.type for _, t in tensors(out)), "cpu")
    autocast_on = torch.is_autocast_enabled(device)
    try:
        with torch.no_grad(), torch.autocast(device, enabled=False):
            redo = func(*_upcast(args), **_upcast(kwargs or {}))
        finite32 = _all_finite(redo)
    except Exception:  # an op that refuses float32 inputs: say nothing
        return None
    return {"dtype": str(low[0]).replace("torch.", ""), "autocast": autocast_on, "fp32_finite": finite32}


class _OpMode(TorchFunctionMode):
    def __init__(self, watch: _Watch):
        super().__init__()
        self.watch = watch

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        before = None
        if (self.watch.forward is None or self.watch.nan_forward is None) and _in_place(func):
            # an in-place op overwrites its input: judge the input before it is gone
            before = (_all_finite((args, kwargs)), _has_nan((args, kwargs)))
        out = func(*args, **kwargs)
        self.watch.after_op(func, args, kwargs, out, before)
        return out


def _in_place(func) -> bool:
    name = getattr(func, "__name__", "")
    return (name.endswith("_") and not name.endswith("__")) or name.startswith("__i")


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    return str(v)


def _graph_nodes(root) -> list[Any]:
    seen, order, todo = set(), [], [root]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        order.append(node)
        todo.extend(n for n, _ in node.next_functions)
    return order


def _backward_producer(loss: torch.Tensor, watch: _Watch, param_names: dict[Any, str]) -> dict[str, Any] | None:
    """Run backward with a hook on every autograd node; return the first that makes NaN/inf."""
    found: dict[str, Any] = {}

    def hook_for(node):
        def hook(grad_inputs, grad_outputs):
            if found or _all_finite(grad_inputs) or not _all_finite(grad_outputs):
                return
            entry = {"node": node.name(), **watch.origin.get(node, {})}
            variable = getattr(node, "variable", None)
            if variable is not None:
                entry["parameter"] = param_names.get(variable)
            entry["grad_absmax"] = _absmax(grad_outputs)
            found.update(entry)

        return hook

    handles = [n.register_hook(hook_for(n)) for n in _graph_nodes(loss.grad_fn)]
    try:
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    return found or None


class WrapperCalled(RuntimeError):
    pass


def _refuse(module, args):
    raise WrapperCalled(
        f"the replay closure called the {type(module).__name__} wrapper; call the model it is given "
        "(closure(model, batch)) so the replay runs eagerly and starts no collective"
    )


def replay_step(
    model: torch.nn.Module,
    closure,
    batch: Any,
    rng: dict[str, Any] | None,
    buffers: BufferSnapshot | None,
    backward: bool = True,
    forbidden: tuple[torch.nn.Module, ...] = (),
) -> dict[str, Any]:
    """Re-run ``closure(model, batch)`` (and its backward) with hooks; leave the model as it was.

    ``forbidden`` are wrappers that must not run in a replay: a DistributedDataParallel
    whose forward and backward would start collectives on this rank alone, a
    torch.compile'd module whose compiled code hides the ops from the hooks. A closure
    that calls one of them instead of the ``model`` it is given fails with a message.
    """
    params = [p for p in model.parameters()]
    saved_grads = [p.grad for p in params]
    current_rng = capture_rng()
    current_buffers = BufferSnapshot(model)
    current_buffers.take()
    current_python = python_state(model)
    if buffers is not None and buffers.stale():
        result_note = "buffers were replaced since the step began; replayed with the current ones"
        buffers = None
    else:
        result_note = None
    watch = _Watch(model)
    result: dict[str, Any] = {"ran": True, "note": result_note}
    try:
        for p in params:
            p.grad = None
        if buffers is not None:
            buffers.restore()
        if rng is not None:
            restore_rng(rng)
        with ExitStack() as stack:
            hooks = torch.nn.modules.module
            stack.callback(hooks.register_module_forward_pre_hook(watch.pre).remove)
            stack.callback(hooks.register_module_forward_hook(watch.post).remove)
            for wrapper in forbidden:
                stack.callback(wrapper.register_forward_pre_hook(_refuse).remove)
            with torch.enable_grad(), _OpMode(watch):
                loss = closure(model, batch)
        loss_value = float(loss.detach().reshape(-1)[0]) if isinstance(loss, torch.Tensor) else math.nan
        result["loss"] = loss_value
        result["forward"] = watch.producer()
        result["module"] = watch.module
        result["terms"] = watch.terms
        result["backward"] = None
        if backward and math.isfinite(loss_value) and isinstance(loss, torch.Tensor) and loss.requires_grad:
            names = {p: n for n, p in model.named_parameters()}
            result["backward"] = _backward_producer(loss, watch, names)
            bad = [n for n, p in model.named_parameters() if p.grad is not None and not _all_finite(p.grad)]
            result["nonfinite_grads"] = bad
        result["reproduced"] = (not math.isfinite(loss_value)) or bool(result.get("nonfinite_grads"))
    except Exception as exc:  # a replay that fails must not hide the original NaN
        result.update(ran=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        for p, g in zip(params, saved_grads, strict=True):
            p.grad = g
        current_buffers.restore()
        restore_python_state(current_python)
        restore_rng(current_rng)
    return result
