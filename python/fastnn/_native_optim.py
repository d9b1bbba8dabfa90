"""RMSprop and Adagrad in the native step (fastnn.native_step): the plan's optimizer name,
hyperparameters and state slots, exactly as RMSprop._update / Adagrad._update call their
kernels (Optimizer._decay's weight_decay first, then the fused update, per trainable range)."""
from __future__ import annotations

import numbers

import numpy as np

from . import optimizers as _optimizers

_NUMBERS = ("rho", "epsilon", "momentum", "weight_decay", "initial_accumulator_value")


def _plain(v):
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)))


def spec(opt):
    """("rmsprop" | "adagrad", hyper) for an RMSprop or Adagrad (not a subclass: its _update may
    differ), or None (the Python step runs)."""
    if type(opt) not in (_optimizers.RMSprop, _optimizers.Adagrad) \
            or not all(_plain(getattr(opt, n, None)) for n in _NUMBERS):
        return None
    decay = float(opt.weight_decay or 0.0)  # Optimizer._decay runs when weight_decay is truthy
    if type(opt) is _optimizers.Adagrad:
        return "adagrad", {"eps": float(opt.epsilon), "decay": decay}
    centered = opt.centered
    if not isinstance(centered, (bool, np.bool_, numbers.Integral)) or centered not in (0, 1):
        return None  # check_hyperparameters refuses it
    return "rmsprop", {"rho": float(opt.rho), "eps": float(opt.epsilon), "momentum": float(opt.momentum),
                       "centered": bool(centered), "decay": decay}


def slot_names(name, hyper, opt):
    """The plan's three state slots of a range for (name, hyper) of native_step._optimizer_spec,
    None for one the update does not use: Adam (m, v, vhat), SGD (velocity, None, None), RMSprop
    (sq_avg, momentum, average_gradient), Adagrad (accum, None, None)."""
    if name == "adam":
        return "m", "v", "vhat" if opt.amsgrad else None
    if name == "sgd":
        return "velocity", None, None
    if name == "adagrad":
        return "accum", None, None
    return ("sq_avg", "momentum" if hyper["momentum"] else None,
            "average_gradient" if hyper["centered"] else None)


def key(opt):
    """What else the plan copies from an RMSprop or Adagrad (the rest: native_step._hyper_key)."""
    return getattr(opt, "rho", None), getattr(opt, "centered", None)
