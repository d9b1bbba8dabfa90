"""The NumPy twins of RMSprop (with Keras 3's momentum and centered form) and Adagrad, for
:mod:`fastnn.reference` (plain formulas in the dtype of the arrays). Imports only NumPy."""
from __future__ import annotations

import numpy as np


def rmsprop_update(param, grad, sq_avg, *, lr, rho=0.9, eps=1e-7, weight_decay=0.0, momentum=0.0,
                   centered=False, momentum_buffer=None, grad_avg=None):
    """s = rho s + (1 - rho) g^2;  d = sqrt(s) + eps   (the course notes' epsilon), or, centered,
    mg = rho mg + (1 - rho) g, d = sqrt(max(s - mg^2, 0)) + eps;  inc = lr g / d;
    p -= inc, or, momentum (Keras's form), b = momentum b + inc, p -= b."""
    t = param.dtype.type
    g = grad + t(weight_decay) * param if weight_decay else grad
    sq_avg[...] = t(rho) * sq_avg + t(1 - rho) * g * g
    if centered:
        grad_avg[...] = t(rho) * grad_avg + t(1 - rho) * g
        root = np.sqrt(np.maximum(t(0), sq_avg - grad_avg * grad_avg))
    else:
        root = np.sqrt(sq_avg)
    inc = t(lr) * g / (root + t(eps))
    if momentum:
        momentum_buffer[...] = t(momentum) * momentum_buffer + inc
        param -= momentum_buffer
    else:
        param -= inc


def adagrad_update(param, grad, accum, *, lr, eps=1e-7, weight_decay=0.0):
    """a += g^2;  p -= lr g / (sqrt(a) + eps)."""
    t = param.dtype.type
    g = grad + t(weight_decay) * param if weight_decay else grad
    accum += g * g
    param -= t(lr) * g / (np.sqrt(accum) + t(eps))
