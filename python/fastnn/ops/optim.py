"""Optimizer updates: sgd_update, rmsprop_update, adagrad_update, adam_update."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _core
from ._common import _float_array, _real, _state_array


# ----------------------------------------------------------------------------
# optimizer updates  (sgd_update, rmsprop_update, adagrad_update, adam_update)
# ----------------------------------------------------------------------------

# Every update works in place on ``param`` and its state arrays (same dtype and
# shape, C-contiguous, writeable: typically views of the model's flat arena) in
# one fused pass, and returns None. All arguments are checked before anything
# is written, so a bad call never leaves a partial update.


def _param_and_grad(param, grad):
    param = _state_array(param, "param", None, None)
    grad = _float_array(grad, "grad", dtype=param.dtype, shape=param.shape)
    return param, grad


def _weight_decay(weight_decay):
    return _real(weight_decay, "weight_decay", low=0.0)


def sgd_update(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """SGD in place, Keras form. g = grad + weight_decay * param;
    plain (momentum 0): p -= lr g;  momentum: v = momentum v - lr g, p += v;
    Nesterov: v as above, p += momentum v - lr g. ``velocity`` is needed when momentum > 0.

    >>> import numpy as np, fastnn.ops as ops
    >>> p = np.ones(3); ops.sgd_update(p, np.full(3, 0.5), lr=0.1); p
    array([0.95, 0.95, 0.95])
    """
    param, grad = _param_and_grad(param, grad)
    lr = _real(lr, "lr", low=0.0)
    momentum = _real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov: expected a bool, got {type(nesterov).__name__}")
    weight_decay = _weight_decay(weight_decay)
    if momentum != 0.0:
        if velocity is None:
            raise ValueError(f"velocity: expected an array of shape {param.shape} when momentum > 0, got None")
        velocity = _state_array(velocity, "velocity", param, "param")
    elif velocity is not None:
        velocity = _state_array(velocity, "velocity", param, "param")
    _core.sgd_update(param, grad, velocity if momentum != 0.0 else None, lr, momentum, bool(nesterov), weight_decay)


def rmsprop_update(param, grad, sq_avg, *, lr, rho=0.9, eps=1e-7, weight_decay=0.0, momentum=0.0,
                   centered=False, momentum_buffer=None, grad_avg=None):
    """RMSprop in place (Keras 3's RMSprop, epsilon as the course notes place it):
    s = rho s + (1 - rho) g^2;  d = sqrt(s) + eps, or, ``centered``,
    mg = rho mg + (1 - rho) g (state ``grad_avg``) and d = sqrt(max(s - mg^2, 0)) + eps;
    inc = lr g / d;  p -= inc, or, ``momentum`` > 0 (state ``momentum_buffer``, Keras's form),
    b = momentum b + inc and p -= b.

    >>> import numpy as np, fastnn.ops as ops
    >>> p, s, b = np.ones(2), np.zeros(2), np.zeros(2)
    >>> ops.rmsprop_update(p, np.ones(2), s, lr=0.1, rho=0.75, eps=1e-12, momentum=0.5, momentum_buffer=b); p
    array([0.8, 0.8])
    """
    param, grad = _param_and_grad(param, grad)
    sq_avg = _state_array(sq_avg, "sq_avg", param, "param")
    lr = _real(lr, "lr", low=0.0)
    rho = _real(rho, "rho", low=0.0, high=1.0, high_open=True)
    eps = _real(eps, "eps", low=0.0, low_open=True)
    momentum = _real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    if not isinstance(centered, (bool, np.bool_)):
        raise TypeError(f"centered: expected a bool, got {type(centered).__name__}")
    weight_decay = _weight_decay(weight_decay)
    if momentum != 0.0 and momentum_buffer is None:
        raise ValueError(f"momentum_buffer: expected an array of shape {param.shape} when momentum > 0, got None")
    if centered and grad_avg is None:
        raise ValueError(f"grad_avg: expected an array of shape {param.shape} when centered, got None")
    mb = _state_array(momentum_buffer, "momentum_buffer", param, "param") if momentum != 0.0 else None
    ga = _state_array(grad_avg, "grad_avg", param, "param") if centered else None
    _core.rmsprop_update(param, grad, sq_avg, lr, rho, eps, weight_decay, momentum, bool(centered), mb, ga)


def adagrad_update(param, grad, accum, *, lr, eps=1e-7, weight_decay=0.0):
    """Adagrad in place: a += g^2;  p -= lr g / (sqrt(a) + eps)."""
    param, grad = _param_and_grad(param, grad)
    accum = _state_array(accum, "accum", param, "param")
    lr = _real(lr, "lr", low=0.0)
    eps = _real(eps, "eps", low=0.0, low_open=True)
    _core.adagrad_update(param, grad, accum, lr, eps, _weight_decay(weight_decay))


def adam_update(param, grad, m, v, *, lr, beta1=0.9, beta2=0.999, eps=1e-7, step,
                weight_decay=0.0, decoupled=False, vmax=None):
    """Adam in place with bias correction (Kingma & Ba), step t >= 1:
    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    weight_decay is added to g (L2), or with ``decoupled=True`` (AdamW) p *= 1 - lr wd first.
    AMSGrad when ``vmax`` is given (a state array like v): vmax = max(vmax, v), and vmax
    replaces v in the denominator (as PyTorch's ``amsgrad=True``).

    >>> import numpy as np, fastnn.ops as ops
    >>> p, g = np.zeros(2), np.array([1.0, -1.0]); m, v = np.zeros(2), np.zeros(2)
    >>> ops.adam_update(p, g, m, v, lr=0.1, step=1); np.round(p, 6)
    array([-0.1,  0.1])
    """
    param, grad = _param_and_grad(param, grad)
    m = _state_array(m, "m", param, "param")
    v = _state_array(v, "v", param, "param")
    if vmax is not None:
        vmax = _state_array(vmax, "vmax", param, "param")
    lr = _real(lr, "lr", low=0.0)
    beta1 = _real(beta1, "beta1", low=0.0, high=1.0, high_open=True)
    beta2 = _real(beta2, "beta2", low=0.0, high=1.0, high_open=True)
    eps = _real(eps, "eps", low=0.0, low_open=True)
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step: expected an int, got {type(step).__name__}")
    if step < 1 or step >= 2**63:
        raise ValueError(f"step: expected an integer in [1, 2**63), got {step}")
    if not isinstance(decoupled, (bool, np.bool_)):
        raise TypeError(f"decoupled: expected a bool, got {type(decoupled).__name__}")
    _core.adam_update(param, grad, m, v, lr, beta1, beta2, eps, int(step),
                      _weight_decay(weight_decay), bool(decoupled), vmax)
