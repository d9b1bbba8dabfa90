"""SGD, RMSprop, Adagrad, Nadam, Adamax and Lion in the native step (fastnn.native_step): the
plan's optimizer name, hyperparameters and state slots, exactly as their _update calls their kernels
(Optimizer._decay's weight_decay first, then the fused update, per trainable range; Nadam's, Adamax's
and Lion's NumPy operations one by one, each rounded as NumPy rounds it: step/optim_more.cpp).
SGD's ema momentum form keeps its last rate across steps (SGD._ema_lr), Nadam its momentum
schedule's running product (Nadam._u_product): sync_in gives them to the plan before a call,
sync_out takes them back after."""
from __future__ import annotations

import numbers

import numpy as np

from . import optimizers as _optimizers

# NumPy updates (_optimizers_more.py) the plan computes operation by operation (step/optim_more.cpp)
_MORE = {_optimizers.Nadam: "nadam", _optimizers.Adamax: "adamax", _optimizers.Lion: "lion"}


def spec(opt):
    """("sgd" | "rmsprop" | "adagrad" | "nadam" | "adamax" | "lion", hyper) for an SGD, RMSprop,
    Adagrad, Nadam, Adamax or Lion (not a subclass: its _update may differ), or None (the Python
    step runs). Its numbers are plain reals (native_step._optimizer_spec checks them)."""
    if type(opt) not in (_optimizers.SGD, _optimizers.RMSprop, _optimizers.Adagrad, *_MORE):
        return None
    decay = float(opt.weight_decay or 0.0)  # Optimizer._decay runs when weight_decay is truthy
    if type(opt) in _MORE:
        hyper = {"beta1": float(opt.beta_1), "beta2": float(opt.beta_2), "decay": decay}
        if type(opt) is not _optimizers.Lion:
            hyper["eps"] = float(opt.epsilon)
        return _MORE[type(opt)], hyper
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
    (sq_avg, momentum, average_gradient), Adagrad (accum, None, None), Nadam (m, v, None), Adamax
    (m, u, None), Lion (m, None, None)."""
    if name == "adam":
        return "m", "v", "vhat" if opt.amsgrad else None
    if name == "sgd":
        return "velocity", None, None
    if name == "adagrad":
        return "accum", None, None
    if name in ("nadam", "adamax", "lion"):
        return "m", {"nadam": "v", "adamax": "u"}.get(name), None
    return ("sq_avg", "momentum" if hyper["momentum"] else None,
            "average_gradient" if hyper["centered"] else None)


def key(opt):
    """What else the plan copies from an RMSprop or Adagrad (the rest: native_step._hyper_key)."""
    return getattr(opt, "rho", None), getattr(opt, "centered", None)


def sync_in(native, opt):
    """Before a call: the state the optimizer keeps across steps outside its slots into the plan
    (the Python step may have run steps since the last call): SGD's ema form's last rate (None:
    0), Nadam's running product."""
    if native.ema_state is not None:
        native.set_ema_lr(float(opt._ema_lr or 0.0))
    if native.nadam_product is not None:
        native.set_nadam_product(*opt._u_product)


def sync_out(native, opt):
    """After a call (opt.iterations counted): that state back, as the Python step leaves it (SGD's
    _ema_lr and _ema_step when a step ran, Nadam's _u_product)."""
    state = native.ema_state
    if state is not None and state[2]:
        opt._ema_lr, opt._ema_step = state[0], (opt.iterations, state[1])
    if native.nadam_product is not None:
        opt._u_product = native.nadam_product
