"""Where the Python layer gets its kernels: ``fastnn.ops``.

Every kernel call of the layers, losses and optimizers goes through :func:`op`,
resolved at call time, so a kernel that lands in ``ops`` is used at once.
Until then its NumPy twin in ``fastnn.reference`` stands in (temporary).
"""
from __future__ import annotations

import inspect

from . import ops, reference

_OUT_CACHE = {}


def op(name):
    """The kernel ``ops.<name>`` (or, while it has not landed, its NumPy twin)."""
    f = getattr(ops, name, None)
    return f if f is not None else getattr(reference, name)


def _takes_out(f):
    r = _OUT_CACHE.get(f)
    if r is None:
        r = _OUT_CACHE[f] = "out" in inspect.signature(f).parameters
    return r


def column_sum(x, out):
    """out[:] = sum of x over rows."""
    f = op("column_sum")
    if _takes_out(f):
        return f(x, out=out)
    out[...] = f(x)
    return out
