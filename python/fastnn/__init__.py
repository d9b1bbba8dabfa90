"""fastnn: fast dense neural networks on the CPU.

A C++17 core (SIMD per ISA chosen at run time, its own thread pool) under a Keras-like API.
"""
from __future__ import annotations

import numbers as _numbers
import os as _os

from . import _core

__version__ = "0.1.0"


def _init_isa():
    want = _os.environ.get("FASTNN_ISA", "auto").strip().lower()
    try:
        _core.select_isa(want)
    except (ValueError, RuntimeError) as e:
        raise RuntimeError(f"fastnn: cannot use FASTNN_ISA={want!r}: {e}") from None


def _init_threads():
    env = _os.environ.get("FASTNN_NUM_THREADS")
    if env is None or env.strip() == "":
        return
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise RuntimeError(f"FASTNN_NUM_THREADS: expected an integer >= 1, got {env!r}")
    try:
        _core.set_num_threads(n)
    except ValueError as e:  # past _core.max_threads() (4096, or OMP_THREAD_LIMIT): named as the variable
        raise RuntimeError(f"FASTNN_NUM_THREADS: {str(e).split(': ', 1)[-1]}") from None


_init_isa()
_init_threads()


def set_num_threads(n: int) -> None:
    """Number of threads fastnn's kernels use (default: all cores, or $FASTNN_NUM_THREADS).

    Affects only fastnn's kernels (they run on fastnn's own thread pool), not other
    libraries' threads (OpenMP, BLAS) in the process."""
    if isinstance(n, bool) or not isinstance(n, _numbers.Integral):  # NumPy integers too
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Number of threads fastnn's kernels use."""
    return _core.get_num_threads()


def cpu_info() -> dict:
    """Detected CPU features, the ISA path in use, threads, compiler and build flags.

    >>> import fastnn
    >>> fastnn.cpu_info()["isa"] in ("scalar", "avx2", "avx512")
    True
    """
    feats = _core.cpu_features()
    return {
        "isa": _core.active_isa(),
        "supported_isas": [i for i in _core.compiled_isas if _core.isa_supported(i)],
        "compiled_isas": list(_core.compiled_isas),
        "features": {k: v for k, v in feats.items() if isinstance(v, bool)},
        "vendor": feats["vendor"],
        "brand": feats["brand"],
        "num_threads": _core.get_num_threads(),
        "compiler": _core.compiler,
        "build_flags": _core.build_flags,
    }


# ----------------------------------------------------------------------------
# the Keras-like API
# ----------------------------------------------------------------------------
from . import activations, callbacks, constraints, initializers, layers, losses, metrics  # noqa: E402
from . import optimizers, regularizers, schedules  # noqa: E402
from .backup import BackupAndRestore  # noqa: E402
from .initializers import set_random_seed  # noqa: E402
from .io import load_model  # noqa: E402
from .layers import Input  # noqa: E402
from .models import Model, Sequential, clone_model  # noqa: E402
from . import models  # noqa: E402

# ----------------------------------------------------------------------------
# the practice toolkit (numpy only; plots and sklearn import their optional
# dependencies themselves, so they are loaded on first use)
# ----------------------------------------------------------------------------
from . import datasets, gradcheck, monitor, preprocessing, sanity, tuning, utils  # noqa: E402
from . import export  # noqa: E402,F401  (registers model.export(path, format="onnx"); onnx loads on use)


def __getattr__(name):
    if name in ("plots", "sklearn", "cli", "data", "tensorboard", "progress"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    if name == "TensorBoard":
        from .tensorboard import TensorBoard
        return TensorBoard
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")
