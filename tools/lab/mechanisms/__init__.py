"""Every lab mechanism, one module per cause (importing this package fills ``REGISTRY``)."""

from tools.lab.mechanisms import data, explosion, healthy, loss, lr, pooling  # noqa: F401
from tools.lab.mechanisms.common import REGISTRY, Mechanism

__all__ = ["REGISTRY", "Mechanism"]
