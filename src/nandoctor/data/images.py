"""Decode image files as Caffe's OpenCV calls would see them (Pillow here; OpenCV is not a dependency).

Caffe decodes an encoded Datum with ``cv::imdecode`` (IMREAD_ANYCOLOR unless transform_param
forces colour or gray) and an ImageData file with ``cv::imread`` (colour unless
``is_color: false``). A truncated file is an error for us: OpenCV often returns a partly grey
image with only a warning, which trains on garbage without failing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Decoded:
    pixels: np.ndarray | None  # (C, H, W) uint8 as the net gets it, None if undecodable
    channels_in_file: int = 0
    error: str | None = None


def decode_image(data: bytes, color: bool | None) -> Decoded:
    """``color``: True -> 3 channels, False -> 1 channel, None -> as stored (1 or 3)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return Decoded(None, 0, "zero-byte image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            img.load()
    except UnidentifiedImageError:
        return Decoded(None, 0, "not a decodable image (unknown or damaged format)")
    except (OSError, ValueError, SyntaxError) as exc:
        text = str(exc)
        if "truncated" in text.lower():
            return Decoded(None, 0, f"truncated image ({text})")
        return Decoded(None, 0, f"undecodable image ({text})")
    except Image.DecompressionBombError as exc:
        return Decoded(None, 0, f"image too large to decode safely ({exc})")
    if img.width == 0 or img.height == 0:
        return Decoded(None, 0, f"zero-sized image ({img.width}x{img.height})")
    stored = 1 if img.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
    want = stored if color is None else (3 if color else 1)
    img = img.convert("RGB" if want == 3 else "L")
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[None, :, :] if arr.ndim == 2 else arr[:, :, ::-1].transpose(2, 0, 1)  # BGR like OpenCV
    return Decoded(arr, stored)
