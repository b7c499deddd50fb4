"""Minimal run folders written here, for the audit rows no corpus run covers (image lists)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

SOLVER = 'net: "train_val.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 10\ndisplay: 1\nsolver_mode: CPU\n'

IMAGE_LAYER = """layer {{
  name: "{name}"
  type: "ImageData"
  top: "data"
  top: "label"
  include {{ phase: {phase} }}
  image_data_param {{ source: "{source}" batch_size: 2 {extra} }}
}}
"""

TAIL = """layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def png(seed: int = 0, size=(4, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (seed * 40 % 256, 10, 200)).save(buf, "PNG")
    return buf.getvalue()


def image_run(root: Path, layer_name: str = "data", bad_entry: bool = False, two_phases: bool = False,
              extra: str = "", entries: list[str] | None = None) -> Path:  # fmt: skip
    """A folder with solver, net and an image list of a few PNGs (one missing when ``bad_entry``)."""
    (root / "img").mkdir(parents=True)
    names = []
    for i in range(4):
        (root / "img" / f"{i}.png").write_bytes(png(i))
        names.append(f"img/{i}.png {i % 2}")
    if bad_entry:
        names.append("img/missing.png 1")
    (root / "list.txt").write_text("\n".join(entries if entries is not None else names) + "\n")
    layers = IMAGE_LAYER.format(name=layer_name, phase="TRAIN", source="list.txt", extra=extra)
    if two_phases:
        layers += IMAGE_LAYER.format(name=layer_name, phase="TEST", source="list.txt", extra=extra)
    (root / "train_val.prototxt").write_text('name: "img"\n' + layers + TAIL)
    (root / "solver.prototxt").write_text(SOLVER)
    return root
