"""SGD, RMSprop and Adagrad in the native step (fastnn.native_step): the plan's optimizer name,
hyperparameters and state slots, exactly as SGD._update / RMSprop._update / Adagrad._update call
their kernels (Optimizer._decay's weight_decay first, then the fused update, per trainable range).
SGD's ema momentum form keeps its last rate across steps (SGD._ema_lr): ema_in gives it to the
plan before a call, ema_out takes it back after."""
from __future__ import annotations

import numbers

import numpy as np

from . import optimizers as _optimizers

_NUMBERS = ("rho", "epsilon", "momentum", "weight_decay", "initial_accumulator_value")


def _plain(v):
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)))


def spec(opt):
    """("sgd" | "rmsprop" | "adagrad", hyper) for an SGD, RMSprop or Adagrad (not a subclass: its
    _update may differ), or None (the Python step runs)."""
    if type(opt) not in (_optimizers.SGD, _optimizers.RMSprop, _optimizers.Adagrad) \
            or not all(_plain(getattr(opt, n, None)) for n in _NUMBERS):
        return None
    decay = float(opt.weight_decay or 0.0)  # Optimizer._decay runs when weight_decay is truthy
    if type(opt) is _optimizers.SGD:
        if opt.momentum_form not in ("keras", "ema"):
            return None  # check_hyperparameters refuses it
        # SGD._update's ema branch runs when the velocity slot exists (momentum set to 0 after build too)
        return "sgd", {"momentum": float(opt.momentum), "nesterov": bool(opt.nesterov), "decay": decay,
                       "ema": opt.momentum_form == "ema" and "velocity" in opt.state}
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


def ema_in(native, opt):
    """Before a call: SGD's ema form's last rate (None: 0) into the plan (the Python step may have
    run steps since the last call)."""
    if native.ema_state is not None:
        native.set_ema_lr(float(opt._ema_lr or 0.0))


def ema_out(native, opt):
    """After a call (opt.iterations counted): the plan's last rate and factor into SGD's _ema_lr and
    _ema_step, as SGD._update leaves them, when a step ran."""
    state = native.ema_state
    if state is not None and state[2]:
        opt._ema_lr, opt._ema_step = state[0], (opt.iterations, state[1])
