"""Write small debug_info logs the way Caffe prints them (one builder shared by the replay tests)."""

from __future__ import annotations

P = "I20261123 10:00:00.000000  4242 "


class DebugLog:
    """Lines of a debug_info log: ``fwd``/``param``/``back``/``pdiff`` per layer, ``end`` per iteration."""

    def __init__(self, loss_weights: dict[str, float] | None = None, types: dict[str, str] | None = None):
        self.lines: list[str] = []
        if types:
            self.lines.append(f"{P}net.cpp:53] Initializing net from parameters: ")
            self.lines.append('name: "N"')
            for name, typ in types.items():
                self.lines += ["layer {", f'  name: "{name}"', f'  type: "{typ}"', "}"]
        for name, w in (loss_weights or {}).items():
            self.lines.append(f"{P}net.cpp:84] Creating Layer {name}")
            self.lines.append(f"{P}net.cpp:137] Setting up {name}")
            self.lines.append(f"{P}net.cpp:144] Top shape: (1)")
            self.lines.append(f"{P}net.cpp:147]     with loss weight {w:g}")

    def fwd(self, layer, value, blob=None):
        self.lines.append(f"{P}net.cpp:593]     [Forward] Layer {layer}, top blob {blob or layer} data: {value}")
        return self

    def param(self, layer, k, value):
        self.lines.append(f"{P}net.cpp:605]     [Forward] Layer {layer}, param blob {k} data: {value}")
        return self

    def back(self, layer, bottom, value):
        self.lines.append(f"{P}net.cpp:621]     [Backward] Layer {layer}, bottom blob {bottom} diff: {value}")
        return self

    def pdiff(self, layer, k, value):
        self.lines.append(f"{P}net.cpp:632]     [Backward] Layer {layer}, param blob {k} diff: {value}")
        return self

    def end(self, iteration, loss="1"):
        self.lines.append(f"{P}solver.cpp:239] Iteration {iteration} (1 iter/s, 1s/1 iters), loss = {loss}")
        return self

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
