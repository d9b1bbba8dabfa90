"""NumPy twins of every op in :mod:`fastnn.ops`: the oracle for the tests.

Plain, readable NumPy with the same signatures and conventions as ``ops``.
Speed does not matter here; clarity and exactness do. Each twin computes in
the dtype of its inputs (float32 or float64), like the kernel it checks.
"""
from __future__ import annotations

import numpy as np

from ._core import activations as _activation_registry
from ._reference_gelu import gelu_approximate as _gelu_approximate, gelu_parts as _gelu_parts
from ._reference_acts import more_derivative as _more_derivative, more_forward as _more_forward
from ._reference_optim import adagrad_update, rmsprop_update  # noqa: F401  (RMSprop: Keras's momentum, centered)
from ._reference_layernorm import layernorm_backward, layernorm_forward  # noqa: F401

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# Names, aliases and default alphas are facts of the ops contract, read from the one
# registry (_core.activations()); the formulas below are this module's own.
_REGISTRY = _activation_registry()
ACTIVATIONS = tuple(_REGISTRY)
DEFAULT_ALPHA = {name: row["alpha"] for name, row in _REGISTRY.items() if row["alpha"] is not None}


def _into(out, result):
    """``result`` written into ``out`` (and ``out`` returned) when given, else ``result``."""
    if out is not None:
        out[...] = result
        return out
    return result


def _canonical(name):
    return _REGISTRY[name]["canonical"] if name in _REGISTRY else name


def _sigmoid(x):
    # stable on both sides: exp of a non-positive number only
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


# ----------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------

def activation(name, x, *, alpha=None, out=None):
    """y = act(x) elementwise."""
    name = _canonical(name)
    a = DEFAULT_ALPHA.get(name, 0.0) if alpha is None else alpha
    x = np.asarray(x)
    t = x.dtype.type
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "linear":
            y = x.copy()
        elif name == "relu":
            y = np.where(x > 0, x, np.where(np.isnan(x), x, t(0)))
        elif name == "leaky_relu":
            y = np.where(x > 0, x, x * t(a))
        elif name == "elu":
            y = np.where(x > 0, x, t(a) * np.expm1(np.minimum(x, 0)))
        elif name == "selu":
            y = np.where(x > 0, t(SELU_SCALE) * x, t(SELU_SCALE * SELU_ALPHA) * np.expm1(np.minimum(x, 0)))
        elif name == "sigmoid":
            y = _sigmoid(x)
        elif name == "tanh":
            y = np.tanh(x)
        elif name == "swish":
            y = x * _sigmoid(x)
        elif name == "softplus":
            y = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
        elif name == "gelu":
            y = _gelu_parts(x, _gelu_approximate(a, "alpha"))[0]
        else:  # relu6, hard_sigmoid, ... (_reference_acts.py); a ValueError for an unknown name
            y = _more_forward(name, x, a)
    y = y.astype(x.dtype, copy=False)
    return _into(out, y)


def activation_grad(name, dy, *, x=None, y=None, alpha=None, out=None):
    """dL/dx = dL/dy * act'(x), from the forward input x or output y."""
    name = _canonical(name)
    a = DEFAULT_ALPHA.get(name, 0.0) if alpha is None else alpha
    dy = np.asarray(dy)
    t = dy.dtype.type
    if x is None and y is None and name != "linear":
        raise ValueError("x, y: give the forward input x or output y")
    if name in ("swish", "softplus", "gelu") and x is None:
        raise ValueError(f"x: activation {name!r} needs the forward input x")
    if x is None and name not in ("sigmoid", "tanh", "linear"):
        s = y  # sign(y) == sign(x) for the piecewise ones
    else:
        s = x
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "linear":
            d = np.ones_like(dy)
        elif name == "relu":
            d = np.where(s > 0, t(1), np.where(np.isnan(s), s, t(0)))
        elif name == "leaky_relu":
            d = np.where(s > 0, t(1), t(a))
        elif name == "elu":
            neg = (y + t(a)) if x is None else t(a) * np.exp(np.minimum(x, 0))
            d = np.where(s > 0, t(1), neg)
        elif name == "selu":
            sa = t(SELU_SCALE * SELU_ALPHA)
            neg = (y + sa) if x is None else sa * np.exp(np.minimum(x, 0))
            d = np.where(s > 0, t(SELU_SCALE), neg)
        elif name == "sigmoid":
            sg = y if y is not None else _sigmoid(x)
            d = sg * (1 - sg)
        elif name == "tanh":
            th = y if y is not None else np.tanh(x)
            d = 1 - th * th
        elif name == "swish":
            sg = _sigmoid(x)
            d = sg * (1 + x * (1 - sg))
        elif name == "softplus":
            d = _sigmoid(x)
        elif name == "gelu":
            d = _gelu_parts(x, _gelu_approximate(a, "alpha"))[1]
        else:  # relu6, hard_sigmoid, ... (_reference_acts.py); a ValueError for an unknown name
            d = _more_derivative(name, x, y, a)
    if s is not None and name != "linear":  # a NaN input gives a NaN gradient (linear: dy itself)
        d = np.where(np.isnan(s), s, d)
    g = (dy * d).astype(dy.dtype, copy=False)
    if name == "relu":  # a select, as the kernel (and PyTorch): an inactive unit passes 0 even for a NaN/inf dy
        g = np.where(s > 0, dy, np.where(np.isnan(s), s, t(0))).astype(dy.dtype, copy=False)
    return _into(out, g)


def softmax(x, *, out=None):
    """Row-wise (last axis) softmax, shifted by the row max for stability."""
    x = np.asarray(x)
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    y = (e / e.sum(axis=-1, keepdims=True)).astype(x.dtype, copy=False)
    return _into(out, y)


def log_softmax(x, *, out=None):
    """Row-wise log(softmax(x)) = x - max - log(sum(exp(x - max)))."""
    x = np.asarray(x)
    z = x - x.max(axis=-1, keepdims=True)
    y = (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(x.dtype, copy=False)
    return _into(out, y)


# ----------------------------------------------------------------------------
# GEMM
# ----------------------------------------------------------------------------

def matmul(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None,
           bias=None, activation=None, activation_alpha=None):
    """act(alpha * op(a) @ op(b) + beta * out + bias); op transposes when asked."""
    A = a.T if trans_a else a
    B = b.T if trans_b else b
    return _gemm_epilogue(A @ B, a.dtype, alpha, beta, out, bias, activation, activation_alpha)


def _gemm_epilogue(prod, dtype, alpha, beta, out, bias, activation, activation_alpha):
    """act(alpha * prod + beta * out + bias) in ``dtype``, written into out when given."""
    t = np.dtype(dtype).type
    c = t(alpha) * prod
    if beta != 0.0:
        if out is None:
            raise ValueError("out: beta != 0 needs out")
        c = c + t(beta) * out
    if bias is not None:
        c = c + bias
    if activation is not None:
        c = globals()["activation"](activation, c.astype(dtype), alpha=activation_alpha)
    return _into(out, c.astype(dtype, copy=False))


def matmul_act_grad(a, b, *, activation, x=None, y=None, activation_alpha=None, trans_a=False, trans_b=False,
                    alpha=1.0, beta=0.0, out=None):
    """(alpha * op(a) @ op(b) + beta * out) * act'(x or y): the product, then activation_grad."""
    g = matmul(a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta,
               out=None if out is None else out.copy())
    return activation_grad(activation, g, x=x, y=y, alpha=activation_alpha, out=out)


def matmul_bias_grad(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """(alpha * op(a) @ op(b) + beta * out[0], alpha * op(b).sum(0) + beta * out[1])."""
    out_w, out_b = (out, None) if out is None or isinstance(out, np.ndarray) else out
    w = matmul(a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, out=out_w)
    t = a.dtype.type
    db = t(alpha) * column_sum(b.T if trans_b else b)
    if beta != 0.0:
        db = db + t(beta) * out_b
    db = db.astype(a.dtype, copy=False)
    return w, _into(out_b, db)


# ----------------------------------------------------------------------------
# BatchNorm
# ----------------------------------------------------------------------------

def _into(out, value):
    """value, or value copied into out when out is given (the ops' out= convention)."""
    if out is None:
        return value
    out[...] = value
    return out


def batchnorm_forward(x, gamma, beta, running_mean, running_var, *, momentum=0.99, eps=1e-3,
                      training=True, out=None):
    """(y, batch_mean, batch_invstd) over the batch axis 0 of a (m, n) x.

    Training: normalise with the batch mean and biased variance and update the
    running statistics in place, Keras convention
    ``run = momentum * run + (1 - momentum) * batch`` with the unbiased batch
    variance (m / (m - 1)). Inference: the folded form with the running ones.
    """
    t = x.dtype.type
    if training:
        m = x.shape[0]
        if m < 2:
            raise ValueError(f"x: training-mode batch norm needs a batch of at least 2 rows, got {m}")
        mean = x.mean(axis=0)
        var = ((x - mean) ** 2).mean(axis=0)
        invstd = (1.0 / np.sqrt(var + t(eps))).astype(x.dtype)
        y = (x - mean) * invstd * gamma + beta
        running_mean[...] = t(momentum) * running_mean + t(1 - momentum) * mean
        running_var[...] = t(momentum) * running_var + t(1 - momentum) * var * t(m / (m - 1))
        return _into(out, y.astype(x.dtype)), mean.astype(x.dtype), invstd
    invstd = (1.0 / np.sqrt(running_var + t(eps))).astype(x.dtype)
    scale = gamma * invstd
    shift = beta - running_mean * scale
    return _into(out, (x * scale + shift).astype(x.dtype)), running_mean.copy(), invstd


def batchnorm_backward(dy, x, gamma, batch_mean, batch_invstd, *, out=None):
    """(dx, dgamma, dbeta) of training-mode batch norm."""
    m = x.shape[0]
    xhat = (x - batch_mean) * batch_invstd
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = (gamma * batch_invstd / m) * (m * dy - dbeta - xhat * dgamma)
    return _into(out, dx.astype(x.dtype)), dgamma.astype(x.dtype), dbeta.astype(x.dtype)


# ----------------------------------------------------------------------------
# losses: (mean loss over the batch, gradient of that mean w.r.t. the input)
# ----------------------------------------------------------------------------

def softmax_cross_entropy(logits, labels, *, out=None):
    """Mean softmax cross-entropy and dlogits = (softmax - target) / m.

    labels: int class ids of shape (m,), or one-hot / probability rows (m, C).
    """
    m = logits.shape[0]
    logp = log_softmax(logits)
    if np.issubdtype(np.asarray(labels).dtype, np.integer):
        labels = np.asarray(labels)
        C = logits.shape[1]
        bad = (labels < 0) | (labels >= C)
        if bad.any():  # NumPy indexing would wrap negative ids silently
            i = int(np.argmax(bad))
            raise ValueError(f"labels: class id {labels[i]} at index {i} is out of range [0, {C})")
        target = np.zeros_like(logits)
        target[np.arange(m), labels] = 1
    else:
        target = labels.astype(logits.dtype)
    # a zero target takes no part in the loss, even where log p = -inf (0 * -inf would be NaN)
    loss = -np.where(target != 0, target * logp, 0).sum() / m
    dlogits = (np.exp(logp) * target.sum(axis=1, keepdims=True) - target) / logits.dtype.type(m)
    return float(loss), _into(out, dlogits.astype(logits.dtype))


def binary_cross_entropy_with_logits(logits, targets, *, out=None):
    """Mean over all elements of the sigmoid cross-entropy; gradient (s - t) / size."""
    z, t = logits, targets.astype(logits.dtype)
    loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    n = z.size
    grad = (_sigmoid(z) - t) / z.dtype.type(n)
    return float(loss.mean()), _into(out, grad.astype(z.dtype))


def mean_squared_error(pred, target, *, out=None):
    """Mean over all elements of (pred - target)^2; gradient 2 (pred - target) / size."""
    d = pred - target.astype(pred.dtype)
    return float((d * d).mean()), _into(out, (2 * d / pred.dtype.type(d.size)).astype(pred.dtype))


# ----------------------------------------------------------------------------
# optimizer updates (in place on param and state; return None)
# ----------------------------------------------------------------------------

def sgd_update(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """Keras SGD. g = grad + wd * param;  plain: p -= lr g;
    momentum: v = mu v - lr g, p += v;  Nesterov: v = mu v - lr g, p += mu v - lr g."""
    t = param.dtype.type
    g = grad + t(weight_decay) * param if weight_decay else grad
    if momentum == 0.0:
        param -= t(lr) * g
        return
    velocity[...] = t(momentum) * velocity - t(lr) * g
    if nesterov:
        param += t(momentum) * velocity - t(lr) * g
    else:
        param += velocity


def adam_update(param, grad, m, v, *, lr, beta1=0.9, beta2=0.999, eps=1e-7, step,
                weight_decay=0.0, decoupled=False, vmax=None):
    """Adam with bias correction (Kingma & Ba), step t >= 1:
    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    weight_decay: added to g (L2), or when decoupled (AdamW) p *= 1 - lr wd first.
    vmax given (AMSGrad): vmax = max(vmax, v) replaces v in the denominator."""
    t = param.dtype.type
    if decoupled and weight_decay:
        param *= t(1 - lr * weight_decay)
        g = grad
    else:
        g = grad + t(weight_decay) * param if weight_decay else grad
    m[...] = t(beta1) * m + t(1 - beta1) * g
    v[...] = t(beta2) * v + t(1 - beta2) * g * g
    mhat = m / t(1 - beta1 ** step)
    if vmax is not None:
        np.maximum(vmax, v, out=vmax)
    vhat = (v if vmax is None else vmax) / t(1 - beta2 ** step)
    param -= t(lr) * mhat / (np.sqrt(vhat) + t(eps))


# ----------------------------------------------------------------------------
# dropout (Philox4x32-10 counter-based RNG: element i uses counter i, key seed)
# ----------------------------------------------------------------------------

_PHILOX_M0, _PHILOX_M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_PHILOX_W0, _PHILOX_W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32(counter, key):
    """Philox4x32-10 on (n, 4) uint32 counters with a 2-word key -> (n, 4) uint32."""
    c = [counter[:, i].astype(np.uint64) for i in range(4)]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for r in range(10):
        p0 = _PHILOX_M0 * c[0]
        p1 = _PHILOX_M1 * c[2]
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k0) & _MASK32, p1 & _MASK32,
             ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & _MASK32, p0 & _MASK32]
        k0 = (k0 + _PHILOX_W0) & _MASK32
        k1 = (k1 + _PHILOX_W1) & _MASK32
    return np.stack(c, axis=1).astype(np.uint32)


def uniform_from_seed(n, seed):
    """n floats in [0, 1): element i is word i % 4 of Philox block i // 4, top 24 bits."""
    blocks = (n + 3) // 4
    ctr = np.zeros((blocks, 4), dtype=np.uint32)
    ctr[:, 0] = np.arange(blocks, dtype=np.uint64) & 0xFFFFFFFF
    ctr[:, 1] = np.arange(blocks, dtype=np.uint64) >> 32
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    bits = philox4x32(ctr, (seed & 0xFFFFFFFF, seed >> 32)).reshape(-1)[:n]
    return (bits >> np.uint32(8)).astype(np.float64) * 2.0 ** -24


def dropout(x, rate, *, seed, out=None):
    """Inverted dropout: keep x_i when u_i >= rate, scaled by 1 / (1 - rate).

    Returns (y, mask) with mask holding 0 or 1 / (1 - rate) in x's dtype, so the
    backward pass is dx = dy * mask."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate: expected a value in [0, 1), got {rate}")
    t = x.dtype.type
    u = uniform_from_seed(x.size, seed).reshape(x.shape)
    mask = np.where(u >= rate, t(1.0 / (1.0 - rate)), t(0)).astype(x.dtype)
    y = x * mask
    return _into(out, y), mask


# ----------------------------------------------------------------------------
# clipping and reductions
# ----------------------------------------------------------------------------

def clip_by_global_norm(grads, max_norm):
    """Scale every array by max_norm / norm when the global L2 norm exceeds max_norm.
    Returns the norm before clipping; a non-finite norm leaves the arrays as they are."""
    norm = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)))
    if np.isfinite(norm) and norm > max_norm:
        s = max_norm / norm
        for g in grads:
            g *= g.dtype.type(s)
    return norm


def clip_by_value(grad, limit):
    """Clamp every element to [-limit, limit] in place; returns the L2 norm before."""
    norm = float(np.sqrt(np.sum(np.square(grad, dtype=np.float64))))
    np.clip(grad, -limit, limit, out=grad)
    return norm


def column_sum(x, *, out=None):
    """Sum over rows of a (m, n) matrix: the bias gradient."""
    s = x.sum(axis=0).astype(x.dtype)
    return _into(out, s)


def all_finite(x):
    """Whether no element is NaN or infinite."""
    return bool(np.isfinite(x).all())


def sum_squares(x):
    """sum(x**2) in float64 (a Python float)."""
    return float(np.sum(np.square(np.asarray(x), dtype=np.float64)))


def abs_sum(x):
    """sum(|x|) in float64 (a Python float)."""
    return float(np.sum(np.abs(np.asarray(x)), dtype=np.float64))


# ----------------------------------------------------------------------------
# row gather
# ----------------------------------------------------------------------------

def take_rows(x, indices, *, out=None):
    """``x[indices]`` along the first axis, every index in [0, len(x)) (a negative
    one is refused, not counted from the end nor clamped), checked before ``out``
    is written."""
    x, indices = np.asarray(x), np.asarray(indices, dtype=np.int64)
    bad = np.flatnonzero((indices < 0) | (indices >= len(x)))
    if bad.size:
        raise ValueError(f"indices: expected values in [0, {len(x)}) (the rows of x), got "
                         f"{int(indices[bad[0]])} at position {int(bad[0])}")
    return _into(out, x[indices])


# ----------------------------------------------------------------------------
# bfloat16 (mixed precision)
# ----------------------------------------------------------------------------

def bfloat16_round(x, *, out=None):
    """float32 ``x`` rounded to bfloat16 and widened back, through the bit patterns.

    The upper 16 bits of the float32, rounded to nearest even; NaN stays NaN
    (quiet bit set, sign kept); +-inf stay; finite values past the largest
    bfloat16 become +-inf; float32 subnormals become signed zeros (as the
    ``vcvtne2ps2bf16`` instruction does).
    """
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    subnormal_or_zero = (u & 0x7F800000) == 0
    bits = np.where(subnormal_or_zero, (u >> 16) & 0x8000, np.where(nan, (u >> 16) | 0x40, rounded))
    r = (bits.astype(np.uint32) << np.uint32(16)).view(np.float32).reshape(np.shape(x))
    return _into(out, r)


def bfloat16_pack(x, *, out=None):
    """float32 ``x`` rounded to bfloat16, as its bit patterns (a uint16 array)."""
    r = (bfloat16_round(x).view(np.uint32) >> np.uint32(16)).astype(np.uint16)
    if out is not None:
        out.view(np.uint16)[...] = r
        return out
    return r


def bfloat16_unpack(bits, *, out=None):
    """bfloat16 bit patterns (uint16 or ml_dtypes.bfloat16) widened to float32 (exact)."""
    u = np.ascontiguousarray(bits).view(np.uint16).astype(np.uint32) << np.uint32(16)
    return _into(out, u.view(np.float32))


def _is_bits(x):
    return isinstance(x, np.ndarray) and (x.dtype == np.uint16 or x.dtype.name == "bfloat16")


def matmul_bf16(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None,
                bias=None, activation=None, activation_alpha=None):
    """matmul of float32 arrays with both operands rounded to bfloat16 first.

    The product of the rounded operands is formed in float64 and rounded once
    to float32; alpha, beta * out, bias and the activation then follow in
    float32, as in :func:`matmul`. ``a`` and ``b`` may be bfloat16 bit patterns
    (uint16, or ml_dtypes.bfloat16); a bits ``out`` gets the float32 result
    rounded to bfloat16 (beta must be 0).
    """
    A = (bfloat16_unpack(a) if _is_bits(a) else bfloat16_round(a)).astype(np.float64)
    B = (bfloat16_unpack(b) if _is_bits(b) else bfloat16_round(b)).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf and NaN operands propagate as IEEE says
        prod = ((A.T if trans_a else A) @ (B.T if trans_b else B)).astype(np.float32)
    if _is_bits(out):
        y = _gemm_epilogue(prod, np.float32, alpha, 0.0, None, bias, activation, activation_alpha)
        return bfloat16_pack(y, out=out)
    return _gemm_epilogue(prod, np.float32, alpha, beta, out, bias, activation, activation_alpha)
