"""Weight initializers, Keras names and defaults, all seedable.

>>> import fastnn
>>> w = fastnn.initializers.HeNormal(seed=0)((784, 512))
>>> w.shape, str(w.dtype)
((784, 512), 'float32')

Without a seed, draws come from fastnn's global generator
(``fastnn.set_random_seed`` makes whole runs reproducible).
"""
from __future__ import annotations

import math

import numpy as np

from ._registry import resolve
from ._validate import Interval, Real, validate

_global_rng = np.random.default_rng()


def set_random_seed(seed):
    """Reseed the generator used by initializers (and fit's shuffling) without their own seed."""
    global _global_rng
    _global_rng = np.random.default_rng(seed)


def global_rng():
    return _global_rng


def _fans(shape, input_axes=None, output_axes=None):
    if input_axes is not None and output_axes is not None:  # Keras 3: both given, else the default
        return int(np.prod([shape[a] for a in input_axes])), int(np.prod([shape[a] for a in output_axes]))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``init(shape, dtype="float32") -> ndarray``."""

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
        self.seed = None if seed is None else int(seed)
        self._rng = None if seed is None else np.random.default_rng(self.seed)

    def _gen(self):
        return self._rng if self._rng is not None else _global_rng

    def __call__(self, shape, dtype="float32"):
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        return np.ascontiguousarray(self._sample(shape), dtype=np.dtype(dtype))

    def _sample(self, shape):
        raise NotImplementedError

    _config = ("seed",)  # the constructor arguments get_config returns

    def get_config(self):
        return {k: getattr(self, k) for k in self._config}


class Zeros(Initializer):
    """All zeros."""

    _config = ()

    def _sample(self, shape):
        return np.zeros(shape)


class Ones(Initializer):
    """All ones."""

    _config = ()

    def _sample(self, shape):
        return np.ones(shape)


class Constant(Initializer):
    """Every element equal to ``value``.  ``Constant(0.1)``"""

    _config = ("value",)

    def __init__(self, value=0.0):
        super().__init__()
        self.value = float(value)

    def _sample(self, shape):
        return np.full(shape, self.value)


class _Normal(Initializer):
    """The arguments of the normal initializers (Keras defaults: mean 0, stddev 0.05)."""

    _config = ("mean", "stddev", "seed")

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)


class RandomNormal(_Normal):
    """N(mean, stddev^2), Keras default stddev 0.05.  ``RandomNormal(stddev=0.01, seed=1)``"""

    def _sample(self, shape):
        return self._gen().normal(self.mean, self.stddev, size=shape)


class RandomUniform(Initializer):
    """U(minval, maxval), Keras default [-0.05, 0.05]; ``limit=a`` means [-a, a]."""

    _config = ("minval", "maxval", "seed")

    def __init__(self, minval=-0.05, maxval=0.05, seed=None, *, limit=None):
        super().__init__(seed)
        if limit is not None:
            minval, maxval = -float(limit), float(limit)
        self.minval, self.maxval = float(minval), float(maxval)

    def _sample(self, shape):
        return self._gen().uniform(self.minval, self.maxval, size=shape)


class TruncatedNormal(_Normal):
    """N(mean, stddev^2) redrawn outside two standard deviations."""

    def _sample(self, shape):
        return self.mean + self.stddev * _truncated_standard_normal(self._gen(), shape)



def _truncated_standard_normal(rng, shape):
    z = rng.standard_normal(size=shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(z) > 2.0
    return z


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")
# standard deviation of a standard normal truncated to [-2, 2]
_TRUNC_STD = 0.87962566103423978


class VarianceScaling(Initializer):
    """Variance ``scale / n`` with n the fan_in, fan_out or their mean.

    distribution: "truncated_normal" (std corrected for the truncation),
    "normal" (= "untruncated_normal"), or "uniform" (limit sqrt(3 scale / n)).

    >>> float(VarianceScaling(2.0, "fan_in", "normal", seed=0)((100, 10)).std().round(1))
    0.1
    """

    _config = ("scale", "mode", "distribution", "seed", "input_axes", "output_axes")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, input_axes=None,
                 output_axes=None):
        self.input_axes, self.output_axes = _axes(input_axes, "input_axes"), _axes(output_axes, "output_axes")
        validate({"scale": scale}, {"scale": [Interval(Real, 0, None, closed="neither")]}, type(self).__name__)
        if mode not in _MODES:
            raise ValueError(f"mode: unknown mode {mode!r}; known: {', '.join(_MODES)}")
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f"distribution: unknown distribution {distribution!r}; "
                             f"known: {', '.join(_DISTRIBUTIONS)}")
        super().__init__(seed)
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def _sample(self, shape):
        fan_in, fan_out = _fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        g = self._gen()
        if self.distribution == "uniform":
            lim = math.sqrt(3.0 * var)
            return g.uniform(-lim, lim, size=shape)
        if self.distribution == "truncated_normal":
            return math.sqrt(var) / _TRUNC_STD * _truncated_standard_normal(g, shape)
        return g.normal(0.0, math.sqrt(var), size=shape)



def _axes(axes, name):
    """Keras 3's input_axes / output_axes of a VarianceScaling initializer: None or a list of ints
    (the kernel's axes whose sizes multiply into fan_in / fan_out; both given, or ignored)."""
    if axes is None:
        return None
    if not isinstance(axes, (list, tuple)) or any(isinstance(a, bool) or not isinstance(a, (int, np.integer))
                                                  for a in axes):
        raise TypeError(f"{name}: expected None or a list of ints, got {axes!r}")
    return [int(a) for a in axes]


def _variant(clsname, scale, mode, distribution, doc):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed, input_axes, output_axes)

    return type(clsname, (VarianceScaling,), {"__init__": __init__, "_config": ("seed", "input_axes", "output_axes"),
                                              "__doc__": doc})


GlorotUniform = _variant("GlorotUniform", 1.0, "fan_avg", "uniform",
                         "U(-l, l), l = sqrt(6 / (fan_in + fan_out)) (Xavier).")
GlorotNormal = _variant("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                        "Truncated normal, std sqrt(2 / (fan_in + fan_out)).")
HeUniform = _variant("HeUniform", 2.0, "fan_in", "uniform", "U(-l, l), l = sqrt(6 / fan_in).")
HeNormal = _variant("HeNormal", 2.0, "fan_in", "truncated_normal",
                    "Truncated normal, std sqrt(2 / fan_in) (for ReLU).")
LecunUniform = _variant("LecunUniform", 1.0, "fan_in", "uniform", "U(-l, l), l = sqrt(3 / fan_in).")
LecunNormal = _variant("LecunNormal", 1.0, "fan_in", "truncated_normal",
                       "Truncated normal, std sqrt(1 / fan_in) (for SELU).")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain`` (Keras 3, after Saxe et al. 2014): the Q of the QR
    decomposition of a standard-normal (max(rows, cols), min(rows, cols)) matrix, signs fixed by
    diag(R), transposed when rows < cols; rows = prod(shape[:-1]), cols = shape[-1].

    >>> import numpy as np
    >>> w = Orthogonal(seed=0)((4, 3), "float64")
    >>> bool(np.allclose(w.T @ w, np.eye(3)))
    True
    """

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        if isinstance(gain, bool) or not np.isfinite(float(gain)):
            raise ValueError(f"gain: expected a finite number, got {gain!r}")
        self.gain = float(gain)

    def _sample(self, shape):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: the tensor to initialize must be at least two-dimensional, "
                             f"got shape {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self._gen().standard_normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only; rectangular: ones on the diagonal).

    >>> Identity(gain=2.0)((2, 3), "float64")
    array([[2., 0., 0.],
           [0., 2., 0.]])
    """

    def __init__(self, gain=1.0):
        super().__init__()
        if isinstance(gain, bool) or not np.isfinite(float(gain)):
            raise ValueError(f"gain: expected a finite number, got {gain!r}")
        self.gain = float(gain)

    def _sample(self, shape):
        if len(shape) != 2:
            raise ValueError(f"Identity: the initializer works on 2-D matrices only, got shape {shape}")
        return self.gain * np.eye(*shape)

    def get_config(self):
        return {"gain": self.gain}

_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
    "identity": Identity,
}
_CLASSES = {c.__name__: c for c in _BY_NAME.values()}
_CLASSES.update(OrthogonalInitializer=Orthogonal, IdentityInitializer=Identity)  # Keras 3's class names

# functional aliases, Keras style: fastnn.initializers.he_normal(seed=1)
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal, lecun_uniform, lecun_normal = HeUniform, HeNormal, LecunUniform, LecunNormal
orthogonal, identity = Orthogonal, Identity
OrthogonalInitializer, IdentityInitializer = Orthogonal, Identity


def get(identifier):
    """An Initializer from a name, a class, an instance, or a serialized dict."""
    return resolve(identifier, kind="initializer", base=Initializer, by_name=_BY_NAME, classes=_CLASSES,
                   expected="an Initializer")


def serialize(init):
    return {"class_name": type(init).__name__, "config": init.get_config()}
