"""Activation functions, by name or as objects.

>>> import numpy as np, fastnn
>>> fastnn.activations.get("relu")(np.array([-1.0, 2.0]))
array([0., 2.])
>>> fastnn.activations.LeakyReLU(alpha=0.1)(np.array([-1.0, 2.0]))
array([-0.1,  2. ])

``Dense(10, activation="softmax")`` or ``activation=fastnn.activations.relu``
or ``activation=fastnn.activations.ELU(alpha=0.5)`` all work. gelu is Keras 3's
``keras.activations.gelu(x, approximate=False)``: ``"gelu"`` is the exact (erf) form;
``GELU(approximate=True)`` or ``functools.partial(fastnn.activations.gelu,
approximate=True)`` the tanh form.
"""
from __future__ import annotations

import functools

import numpy as np

from . import ops

# From the one registry (ops.REGISTRY = _core.activations()): Keras names (the
# registry's canonical ones) -> the kernel name in ops.activation; aliases; default
# alpha. softmax is row-wise, its own kernel, so it is added here.
_KERNEL = {row["canonical"]: row["canonical"] for row in ops.REGISTRY.values()}
_KERNEL["softmax"] = None
_ALIASES = {name: row["canonical"] for name, row in ops.REGISTRY.items() if name != row["canonical"]}
_ALIASES[None] = "linear"
_DEFAULT_ALPHA = {row["canonical"]: row["alpha"] for row in ops.REGISTRY.values() if row["alpha"] is not None}
KNOWN = tuple(_KERNEL)


def _canonical(name):
    """The registry name of ``name``: case-insensitive ("ReLU", "Tanh"), aliases resolved;
    an unknown name raises with the closest known names suggested."""
    if isinstance(name, str):
        key = name.strip().lower().replace("-", "_")
        key = {"leakyrelu": "leaky_relu"}.get(key, key)
    else:
        key = name
    key = _ALIASES.get(key, key)
    if key not in _KERNEL:
        import difflib
        close = difflib.get_close_matches(str(key), list(KNOWN) + ["identity", "silu"], n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"activation: unknown activation {name!r}; known: {', '.join(KNOWN)}{hint}")
    return key


class ActivationFunction:
    """An elementwise (or, for softmax, row-wise) activation with its gradient.

    >>> import numpy as np
    >>> ActivationFunction("tanh")(np.zeros(2))
    array([0., 0.])
    """

    def __init__(self, name, alpha=None, approximate=None):
        name = _canonical(name)
        self.name = name
        self.kernel = _KERNEL[name]
        if name == "gelu":  # the kernels' alpha is gelu's approximate flag (0 or 1)
            if alpha is not None:
                raise ValueError("alpha: activation 'gelu' takes no alpha; its option is approximate=True or "
                                 "False (keras.activations.gelu)")
            self.alpha = float(_approximate_flag(approximate))
            return
        if approximate is not None:
            raise ValueError(f"approximate: only gelu takes it, not activation {name!r}")
        if alpha is not None and name not in _DEFAULT_ALPHA:
            raise ValueError(f"alpha: activation {name!r} takes no alpha")
        if name == "celu" and alpha is not None and float(alpha) == 0.0:
            raise ValueError("alpha: celu's alpha divides x, expected a nonzero number, got 0")
        if name == "squareplus" and alpha is not None and not float(alpha) > 0.0:
            raise ValueError(f"alpha: squareplus's alpha is its b, expected b > 0, got {alpha}")
        if name in _DEFAULT_ALPHA:
            self.alpha = float(_DEFAULT_ALPHA[name] if alpha is None else alpha)
        else:
            self.alpha = None

    # whether the gradient needs the pre-activation input (registry: grad_needs "x")
    @property
    def needs_input(self):
        return self.name != "softmax" and ops.REGISTRY[self.name]["grad_needs"] == "x"

    @property
    def is_linear(self):
        return self.name == "linear"

    def __call__(self, x, out=None):
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
        if self.name == "softmax":
            if x.ndim == 1:
                return ops.softmax(x.reshape(1, -1)).reshape(-1)
            return ops.softmax(x, out=out)
        return ops.activation(self.kernel, x, alpha=self.alpha, out=out)

    def backward(self, dy, *, x=None, y=None, out=None):
        """dL/dx from dL/dy, the forward input x and/or output y (softmax: y)."""
        if self.name == "softmax":
            # dz = y * (dy - sum(dy * y, axis=1))
            s = np.einsum("ij,ij->i", dy, y)[:, None]
            if out is None:
                out = np.empty_like(dy)
            np.subtract(dy, s, out=out)
            np.multiply(out, y, out=out)
            return out
        if self.name == "linear":
            if out is None:
                return dy.copy()
            if out is not dy:
                np.copyto(out, dy)
            return out
        if self.needs_input:
            return ops.activation_grad(self.kernel, dy, x=x, alpha=self.alpha, out=out)
        return ops.activation_grad(self.kernel, dy, y=y, alpha=self.alpha, out=out)

    @property
    def approximate(self):
        """gelu's form: True for the tanh approximation (None for the other activations)."""
        return bool(self.alpha) if self.name == "gelu" else None

    def get_config(self):
        if self.name == "gelu":
            return {"name": "gelu", "approximate": self.approximate}
        return {"name": self.name, "alpha": self.alpha}

    def __eq__(self, other):
        return isinstance(other, ActivationFunction) and self.get_config() == other.get_config()

    def __repr__(self):
        a = f", alpha={self.alpha}" if self.alpha is not None else ""
        a = f", approximate={self.approximate}" if self.name == "gelu" else a
        return f"{type(self).__name__}({self.name!r}{a})"


def LeakyReLU(alpha=_DEFAULT_ALPHA["leaky_relu"]):
    """leaky_relu with slope ``alpha`` for x < 0 (default: the registry's, 0.2, as
    ``keras.activations.leaky_relu``; the LeakyReLU *layer* is another object)."""
    return ActivationFunction("leaky_relu", alpha)


def ELU(alpha=_DEFAULT_ALPHA["elu"]):
    """elu: alpha * (exp(x) - 1) for x < 0."""
    return ActivationFunction("elu", alpha)


def _approximate_flag(approximate):
    if approximate is None:
        return False  # Keras's default: the exact (erf) form
    if isinstance(approximate, (bool, np.bool_)):
        return bool(approximate)
    raise TypeError(f"approximate: expected True or False, got {type(approximate).__name__}")


def GELU(approximate=False):
    """gelu: exact x * Phi(x) (erf), or with ``approximate=True`` the tanh form
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as ``keras.activations.gelu``."""
    return ActivationFunction("gelu", approximate=approximate)


def gelu(x, approximate=False):
    """gelu(x) elementwise on a NumPy array, as ``keras.activations.gelu(x, approximate)``."""
    return ActivationFunction("gelu", approximate=approximate)(x)


def _fn(name):
    def f(x, alpha=None):
        return ActivationFunction(name, alpha)(x) if alpha is not None else ActivationFunction(name)(x)
    f.__name__ = name
    f.__doc__ = f"{name}(x) elementwise (softmax: row-wise) on a NumPy array."
    return f


sigmoid = _fn("sigmoid")
tanh = _fn("tanh")
relu = _fn("relu")
leaky_relu = _fn("leaky_relu")
elu = _fn("elu")
selu = _fn("selu")
swish = _fn("swish")
silu = swish
softplus = _fn("softplus")
softmax = _fn("softmax")
linear = _fn("linear")


def _fn_x(name, doc):
    def f(x):
        return ActivationFunction(name)(x)
    f.__name__ = name
    f.__doc__ = f"{name}(x) = {doc} elementwise on a NumPy array, as ``keras.activations.{name}``."
    return f


relu6 = _fn_x("relu6", "min(max(x, 0), 6)")
hard_sigmoid = _fn_x("hard_sigmoid", "relu6(x + 3) / 6")
hard_silu = _fn_x("hard_silu", "x * hard_sigmoid(x)")
hard_swish = hard_silu
softsign = _fn_x("softsign", "x / (1 + |x|)")
exponential = _fn_x("exponential", "exp(x)")
mish = _fn_x("mish", "x * tanh(softplus(x))")
log_sigmoid = _fn_x("log_sigmoid", "log(sigmoid(x)) = -softplus(-x)")
hard_tanh = _fn_x("hard_tanh", "min(max(x, -1), 1)")


sparse_plus = _fn_x("sparse_plus", "0 (x <= -1), (x + 1)^2 / 4, x (x >= 1)")
tanh_shrink = _fn_x("tanh_shrink", "x - tanh(x)")


def hard_shrink(x, threshold=0.5):
    """hard_shrink(x) = x where |x| > threshold, else 0, as ``keras.activations.hard_shrink``
    (threshold is the activation's alpha: ``{"name": "hard_shrink", "alpha": threshold}``)."""
    return ActivationFunction("hard_shrink", threshold)(x)


def soft_shrink(x, threshold=0.5):
    """soft_shrink(x) = x - threshold (x > threshold), x + threshold (x < -threshold), else 0,
    as ``keras.activations.soft_shrink`` (threshold is the activation's alpha)."""
    return ActivationFunction("soft_shrink", threshold)(x)


def squareplus(x, b=4):
    """squareplus(x) = (x + sqrt(x^2 + b)) / 2, as ``keras.activations.squareplus``
    (b is the activation's alpha: ``{"name": "squareplus", "alpha": b}``)."""
    return ActivationFunction("squareplus", b)(x)


def celu(x, alpha=1.0):
    """celu(x) = x (x > 0), alpha * expm1(x / alpha) (x <= 0), as ``keras.activations.celu``."""
    return ActivationFunction("celu", alpha)(x)


_FUNCTIONS = {f: f.__name__ for f in (sigmoid, tanh, relu, leaky_relu, elu, selu, swish,
                                       softplus, softmax, linear, gelu, relu6, hard_sigmoid, hard_silu,
                                       softsign, exponential, mish, log_sigmoid, celu, hard_tanh, squareplus,
                                       sparse_plus, tanh_shrink, hard_shrink, soft_shrink)}
# the keyword of functools.partial(f, keyword=...) that holds the activation's alpha
_ALPHA_KEYWORD = {squareplus: "b", hard_shrink: "threshold", soft_shrink: "threshold"}


def _from_partial(p):
    """``functools.partial(f, **options)`` of a function of this module (Keras users pass
    ``partial(keras.activations.gelu, approximate=True)``): its options, else None."""
    allowed = {"threshold"} if p.func in (hard_shrink, soft_shrink) else {"alpha", "approximate", "b"}
    if p.func not in _FUNCTIONS or p.args or not set(p.keywords) <= allowed:
        return None
    alpha = p.keywords.get(_ALPHA_KEYWORD.get(p.func, "alpha"))
    return ActivationFunction(_FUNCTIONS[p.func], alpha, p.keywords.get("approximate"))


def get(identifier):
    """An ActivationFunction from a name, a function of this module, an object or None (linear)."""
    if isinstance(identifier, ActivationFunction):
        return identifier
    if identifier is None or isinstance(identifier, str):
        return ActivationFunction(identifier)
    if isinstance(identifier, dict):
        return ActivationFunction(identifier["name"], identifier.get("alpha"), identifier.get("approximate"))
    if callable(identifier) and identifier in _FUNCTIONS:
        return ActivationFunction(_FUNCTIONS[identifier])
    if isinstance(identifier, functools.partial) and _from_partial(identifier) is not None:
        return _from_partial(identifier)
    raise TypeError(f"activation: expected a name ({', '.join(KNOWN)}), an activation object or None, "
                    f"got {type(identifier).__name__}")
