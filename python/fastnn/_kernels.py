"""Where the Python layer gets its kernels: ``fastnn.ops``, nothing else.

Every kernel call of the layers, losses and optimizers goes through :func:`op`
(``op("matmul")`` is ``ops.matmul``), resolved at call time.
"""
from __future__ import annotations

from . import ops


def op(name):
    """The kernel ``ops.<name>``."""
    return getattr(ops, name)
