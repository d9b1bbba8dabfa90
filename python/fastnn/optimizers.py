"""Optimizers: each step is one fused kernel call over the flat parameter arena.

Keras names and defaults. ``learning_rate`` is a number or a schedule
(``fastnn.schedules``). Gradient clipping, one at a time: ``clipnorm`` (each
variable's gradient to that L2 norm), ``clipvalue`` (each element to
[-v, v]), ``global_clipnorm`` (all gradients together). ``weight_decay`` is
decoupled, as in Keras: ``p -= lr * weight_decay * p`` before the update.
``use_ema=True, ema_momentum=0.99`` keeps a moving average of the weights (Keras's
``use_ema``; ``fastnn._ema``), written into the model at the end of ``fit``.
Nadam, Adamax and Lion (``fastnn._optimizers_more``) are NumPy-vectorized.

>>> import fastnn
>>> opt = fastnn.optimizers.Adam(learning_rate=1e-3)
>>> opt.get_config()["beta_1"]
0.9
"""
from __future__ import annotations

import math

import numbers
import sys
import warnings

import numpy as np

from . import _ema
from . import schedules as _schedules
from . import ops as _ops
from ._registry import resolve
from ._validate import Interval, Options, Real, validate

_POSITIVE = Interval(Real, 0, None, closed="neither")
_UNIT_OPEN = Interval(Real, 0, 1, closed="left")  # [0, 1): momentum, rho, betas


class Optimizer:
    """Base class. The model binds it to its arena with ``build(size, dtype)`` and calls
    ``apply(params, grads, ranges, variables)`` once per step; state arrays in
    ``self.state`` have the arena's length."""

    slots = ()
    _parameter_constraints = {
        "learning_rate": [_POSITIVE, _schedules.LearningRateSchedule],
        "clipnorm": [None, _POSITIVE], "clipvalue": [None, _POSITIVE], "global_clipnorm": [None, _POSITIVE],
        "weight_decay": [None, Interval(Real, 0, None, closed="left")],
        "epsilon": [_POSITIVE], "momentum": [_UNIT_OPEN], "rho": [_UNIT_OPEN],
        "beta_1": [_UNIT_OPEN], "beta_2": [_UNIT_OPEN],
        "initial_accumulator_value": [Interval(Real, 0, None, closed="left")],
        "momentum_form": [Options(str, ("keras", "ema"))],
    }

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 weight_decay=None, name=None, lr=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None):
        _keras_only(type(self).__name__, loss_scale_factor=(loss_scale_factor, None, "no loss scaling"),
                    gradient_accumulation_steps=(gradient_accumulation_steps, None, "one update per batch"))
        if lr is not None:  # Keras 2's name, still in the course notes' code
            warnings.warn("lr: deprecated (Keras 2's name); use learning_rate=", DeprecationWarning, stacklevel=3)
            learning_rate = lr
        validate(dict(learning_rate=learning_rate, clipnorm=clipnorm, clipvalue=clipvalue,
                      global_clipnorm=global_clipnorm, weight_decay=weight_decay),
                 self._parameter_constraints, type(self).__name__)
        _ema.check(use_ema, ema_momentum, ema_overwrite_frequency)
        given = [k for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                ("global_clipnorm", global_clipnorm)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"clipnorm, clipvalue, global_clipnorm: give at most one, got {', '.join(given)}")
        self.learning_rate = learning_rate
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay = weight_decay
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.epoch = 0
        self.state = {}
        self._views = None
        self.use_ema, self.ema_momentum = bool(use_ema), float(ema_momentum)
        self.ema_overwrite_frequency = ema_overwrite_frequency
        if self.use_ema:  # the moving average of the weights is one more slot (saved, remapped), see fastnn._ema
            self.slots = tuple(type(self).slots) + (_ema.SLOT,)

    # learning rate --------------------------------------------------------
    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        validate({"learning_rate": value}, Optimizer._parameter_constraints, type(self).__name__)
        if isinstance(value, _schedules.LearningRateSchedule):
            self._learning_rate = value
            return
        self._learning_rate = float(value)

    def current_learning_rate(self):
        lr = self._learning_rate
        if isinstance(lr, _schedules.LearningRateSchedule):
            return float(lr(self.epoch if lr.per_epoch else self.iterations))
        return lr

    def learning_rates(self, count):
        """The rates of the next ``count`` steps: current_learning_rate as it will read at
        each of them (iterations, iterations + 1, ...; the epoch does not change)."""
        lr = self._learning_rate
        if isinstance(lr, _schedules.LearningRateSchedule) and not lr.per_epoch:
            return [float(lr(self.iterations + i)) for i in range(count)]
        return [self.current_learning_rate()] * count

    # hyperparameters set after construction ------------------------------
    def check_hyperparameters(self):
        """Checks the hyperparameters as they are now: an attribute assigned after construction
        (``opt.beta_1 = 2.0``, ``opt.clipnorm = -1``) is not checked when set, as in Keras.
        ``fit`` and ``train_on_batch`` call this before anything changes, so a refused fit
        leaves the model and the optimizer as they were. The error names the attribute."""
        owner = type(self).__name__
        names = [k for k in self._parameter_constraints if k != "learning_rate" and hasattr(self, k)]
        validate({k: getattr(self, k) for k in names}, self._parameter_constraints, owner)
        validate({"learning_rate": self._learning_rate}, Optimizer._parameter_constraints, owner)
        given = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"clipnorm, clipvalue, global_clipnorm: give at most one, got {', '.join(given)} "
                             f"(in {owner})")
        for k in ("amsgrad", "nesterov", "centered"):  # read as truthy (Keras): 0 and 1 too, never a string such as "no"
            v = getattr(self, k, False)
            if not isinstance(v, (bool, np.bool_, numbers.Integral)) or v not in (0, 1):
                raise TypeError(f"{k}: expected True or False, got {v!r} (in {owner})")
        _ema.check(self.use_ema, self.ema_momentum, self.ema_overwrite_frequency)
        if self.use_ema != (_ema.SLOT in self.slots):
            raise ValueError(f"use_ema: set at construction only (the moving average is a slot), got "
                             f"{self.use_ema!r} on an optimizer made with use_ema={not self.use_ema} (in {owner})")
        eps = getattr(self, "epsilon", None)
        for a in list(self.state.values())[:1] if eps is not None else ():  # built: the bound build checks
            if not eps >= np.finfo(a.dtype).tiny:
                raise ValueError(f"epsilon: expected a normal {a.dtype.name} value >= {np.finfo(a.dtype).tiny} "
                                 f"(a subnormal epsilon flushes to zero), got {eps!r} (in {owner})")

    # state ----------------------------------------------------------------
    def _initial_state(self, slot):
        return 0.0

    def build(self, size, dtype, remap=None):
        """State arrays of length ``size``; ``remap`` = [(old_slice, new_slice)] keeps old state."""
        eps = getattr(self, "epsilon", None)
        if eps is not None and not eps >= np.finfo(dtype).tiny:
            # the update kernels run with flush-to-zero: a subnormal epsilon reads as 0
            # there, and a zero gradient then gives 0/0 = NaN weights
            raise ValueError(f"epsilon: expected a normal {np.dtype(dtype).name} value >= "
                             f"{np.finfo(dtype).tiny} (a subnormal epsilon flushes to zero), got {eps!r}")
        old = self.state
        self.state = {}
        self._views = None
        for s in self.slots:
            a = np.full(size, np.nan if s == _ema.SLOT else self._initial_state(s), dtype=dtype)
            if remap and s in old:
                for o, n in remap:
                    a[n] = old[s][o]
            self.state[s] = a
        if self.use_ema:
            self._average_params, self._average_started = None, False  # the arena may have moved
            self._average_swapped = False

    def _switched_on_slots(self):
        """Slots a hyperparameter needs that may have been set after build (SGD's momentum,
        Adam's amsgrad); a missing one is added at the next step, starting at zero (Keras
        trains on)."""
        return ()

    def _add_missing_slots(self, params):
        for s in self._switched_on_slots():
            if s not in self.state:  # before the moving average's slot, as the constructor orders them
                at = self.slots.index(_ema.SLOT) if _ema.SLOT in self.slots else len(self.slots)
                self.slots = tuple(self.slots[:at]) + (s,) + tuple(self.slots[at:])
                self.state[s] = np.zeros(params.size, dtype=params.dtype)
                self._views = None

    # step -----------------------------------------------------------------
    def checked_learning_rate(self):
        """The next step's learning rate, refused (ValueError) unless finite and >= 0: every
        optimizer, as the fused kernels; the trainer asks before a step's forward pass, so a
        refused rate changes nothing (BatchNormalization's statistics, Dropout's seeds)."""
        lr = self.current_learning_rate()
        if not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"lr: expected a finite value >= 0, got {lr!r} (learning rate of step "
                             f"{self.iterations + 1})")
        return lr

    def apply(self, params, grads, ranges, variables, lr=None):
        """One update of params[a:b] for each trainable range (a, b) at learning rate lr (None:
        ``checked_learning_rate()``; the trainer passes the one it checked before the step).

        variables: [(start, stop)] of each trainable variable, for clipnorm."""
        self._add_missing_slots(params)
        key = (id(params), id(grads), tuple(ranges), tuple(variables))
        if self._views is None or self._views[0] != key:  # views made once, not every step
            self._views = (key, [(params[a:b], grads[a:b], {k: v[a:b] for k, v in self.state.items()})
                                 for a, b in ranges], [grads[a:b] for a, b in variables])
        _, per_range, per_variable = self._views
        lr = self.checked_learning_rate() if lr is None else lr
        if self.global_clipnorm is not None:
            _ops.clip_by_global_norm([g for _, g, _ in per_range], self.global_clipnorm)
        elif self.clipnorm is not None:
            for g in per_variable:
                _ops.clip_by_global_norm([g], self.clipnorm)
        elif self.clipvalue is not None:
            for _, g, _ in per_range:
                _ops.clip_by_value(g, self.clipvalue)
        self.iterations += 1
        for p, g, state in per_range:
            self._update(p, g, state, lr)
        if self.use_ema:
            _ema.update(self, params, ranges)

    def finalize_variable_values(self):
        """With ``use_ema``: the trained weights replaced by their moving average (Keras; fit calls
        it at its end). Without: nothing."""
        if self.use_ema:
            _ema.finalize(self)

    def swap_ema_weights(self):
        """With ``use_ema``: exchange the weights and their moving average (call twice to undo),
        e.g. around an evaluation during training, as Keras's ``SwapEMAWeights`` callback."""
        if not self.use_ema:
            raise ValueError("use_ema: this optimizer keeps no moving average (compile with use_ema=True)")
        _ema.swap(self)

    def _decay(self, p, lr):
        if self.weight_decay:
            p *= p.dtype.type(1.0 - lr * self.weight_decay)

    def _update(self, p, g, state, lr):
        raise NotImplementedError

    # config ---------------------------------------------------------------
    _hyper = ()  # the subclass's own float hyperparameters, set by _set_hyper, in get_config

    def _set_hyper(self, learning_rate, kwargs, **hyper):
        """Validates ``hyper`` (before any state is set), runs the base constructor with
        ``kwargs``, then stores each value of ``hyper`` as a float attribute."""
        validate(hyper, self._parameter_constraints, type(self).__name__)
        Optimizer.__init__(self, learning_rate, **kwargs)
        for k, v in hyper.items():
            setattr(self, k, float(v))

    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, _schedules.LearningRateSchedule):
            lr = _schedules.serialize(lr)
        c = {"learning_rate": lr, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
             "global_clipnorm": self.global_clipnorm, "weight_decay": self.weight_decay,
             **{k: getattr(self, k) for k in self._hyper}}
        if self.use_ema:  # only when used: older saved files stay identical
            c.update(use_ema=True, ema_momentum=self.ema_momentum,
                     ema_overwrite_frequency=self.ema_overwrite_frequency)
        return c


def _keras_only(owner, **args):
    """Keras 3 arguments fastnn takes only at the value it computes (Keras's default, in the
    configs Keras writes): {name: (value, the accepted value, what fastnn computes)}."""
    for k, (v, ok, what) in args.items():
        if v is not ok and not (ok is not None and not isinstance(v, bool) and v == ok):
            raise ValueError(f"{k}: fastnn computes {what} ({k}={ok!r}), cannot honour {v!r} (in {owner})")


class SGD(Optimizer):
    """Gradient descent, with optional momentum in one of two forms, side by side:

    ============================  ==========================  ===============================
    ``momentum_form``             velocity                    step
    ============================  ==========================  ===============================
    ``"keras"`` (default, Keras)  ``v = momentum v - lr g``   ``p += v``
    ``"ema"`` (the course notes)  ``v = b v + (1 - b) g``     ``p -= lr v``
    ============================  ==========================  ===============================

    (``b`` = ``momentum``.) The notes' form averages the gradients, so its ``lr`` is
    ``1 / (1 - momentum)`` times Keras's for the same steps: at a constant learning rate
    ``SGD(lr, momentum=b, momentum_form="ema")`` takes exactly the steps of
    ``SGD((1 - b) * lr, momentum=b)``. That is how it runs (the same fused kernel,
    ``lr`` scaled by ``1 - b``; when a schedule changes ``lr``, the stored velocity is
    rescaled by ``lr_new / lr_old`` first, so each step is exactly the notes' update).
    The ``velocity`` slot holds ``-lr * v`` in the ``"ema"`` form. Nesterov in either
    form: ``p += momentum v - lr g`` (Keras); ``p -= lr (b v + (1 - b) g)`` (ema).

    >>> SGD(learning_rate=0.1, momentum=0.9, nesterov=True).nesterov
    True
    >>> SGD(learning_rate=0.1, momentum=0.9, momentum_form="ema").get_config()["momentum_form"]
    'ema'
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, momentum_form="keras", **kwargs):
        validate({"momentum": momentum, "momentum_form": momentum_form}, self._parameter_constraints, "SGD")
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.momentum_form = momentum_form
        self.slots = (("velocity",) if self.momentum else ()) + ((_ema.SLOT,) if self.use_ema else ())
        self._ema_lr = None    # the lr the ema velocity was last scaled by
        self._ema_step = None  # (iteration, rescale factor) of the current step

    def _update(self, p, g, state, lr):
        self._decay(p, lr)
        v = state.get("velocity")
        if self.momentum_form == "ema" and v is not None:
            if self._ema_step is None or self._ema_step[0] != self.iterations:  # first range of a step
                prev = self._ema_lr
                self._ema_step = (self.iterations, lr / prev if prev and prev != lr else 1.0)
                self._ema_lr = lr
            if self._ema_step[1] != 1.0:
                v *= v.dtype.type(self._ema_step[1])
            lr = (1.0 - self.momentum) * lr
        _ops.sgd_update(p, g, v, lr=lr, momentum=self.momentum, nesterov=bool(self.nesterov))  # truthy, as Keras

    def _switched_on_slots(self):
        return ("velocity",) if self.momentum else ()

    def build(self, size, dtype, remap=None):
        super().build(size, dtype, remap)
        if not remap:
            self._ema_lr = self._ema_step = None

    def get_config(self):
        c = super().get_config()
        c.update(momentum=self.momentum, nesterov=self.nesterov)
        if self.momentum_form != "keras":  # only when not Keras's form: Keras reads the config
            c["momentum_form"] = self.momentum_form
        return c


class RMSprop(Optimizer):
    """s = rho s + (1 - rho) g^2;  p -= lr g / (sqrt(s) + epsilon) (epsilon as the course notes
    place it; Keras: sqrt(s + epsilon)). Keras 3's ``momentum`` (slot ``momentum``, made only when
    momentum > 0): b = momentum b + lr g / d, p -= b (the buffer holds lr-scaled steps, as Keras;
    PyTorch scales by lr after). ``centered=True`` (slot ``average_gradient``, the mean gradient
    mg = rho mg + (1 - rho) g): d = sqrt(max(s - mg^2, 0)) + epsilon (Keras: sqrt(s - mg^2 + epsilon)).

    >>> RMSprop(momentum=0.9, centered=True).slots
    ('sq_avg', 'momentum', 'average_gradient')
    """

    slots = ("sq_avg",)
    _hyper = ("rho", "epsilon")

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, momentum=0.0, centered=False, **kwargs):
        validate({"momentum": momentum}, self._parameter_constraints, "RMSprop")
        if not isinstance(centered, (bool, np.bool_)):
            raise TypeError(f"centered: expected True or False, got {centered!r}")
        self._set_hyper(learning_rate, kwargs, rho=rho, epsilon=epsilon)
        self.momentum, self.centered = float(momentum), bool(centered)
        self.slots = ("sq_avg",) + self._switched_on_slots() + tuple(s for s in self.slots if s != "sq_avg")

    def _switched_on_slots(self):
        return (("momentum",) if self.momentum else ()) + (("average_gradient",) if self.centered else ())

    def _update(self, p, g, state, lr):
        self._decay(p, lr)
        _ops.rmsprop_update(p, g, state["sq_avg"], lr=lr, rho=self.rho, eps=self.epsilon,
                            momentum=self.momentum, centered=bool(self.centered),  # truthy, as Keras
                            momentum_buffer=state.get("momentum"), grad_avg=state.get("average_gradient"))

    def get_config(self):
        c = super().get_config()
        if self.momentum or self.centered:  # only when used: older saved files stay identical
            c.update(momentum=self.momentum, centered=bool(self.centered))
        return c


class Adagrad(Optimizer):
    """a += g^2;  p -= lr g / (sqrt(a) + epsilon); a starts at initial_accumulator_value."""

    slots = ("accum",)
    _hyper = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        self._set_hyper(learning_rate, kwargs, initial_accumulator_value=initial_accumulator_value,
                        epsilon=epsilon)

    def _initial_state(self, slot):
        return self.initial_accumulator_value

    def _update(self, p, g, state, lr):
        self._decay(p, lr)
        _ops.adagrad_update(p, g, state["accum"], lr=lr, eps=self.epsilon)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction:
    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr m^ / (sqrt(v^) + epsilon).

    ``epsilon`` defaults to Keras's 1e-7; the course notes (and the Adam paper,
    PyTorch) use 1e-8: ``Adam(epsilon=1e-8)`` gives the notes' update.

    ``amsgrad=True`` (Keras's default False; Reddi et al.): ``vmax = max(vmax, v)`` replaces
    v in the denominator (slot ``vhat``), the same fused kernel (in the native step too).

    >>> Adam(amsgrad=True).slots
    ('m', 'v', 'vhat')
    """

    slots = ("m", "v")
    _hyper = ("beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        if not isinstance(amsgrad, (bool, np.bool_)):
            raise TypeError(f"amsgrad: expected True or False, got {amsgrad!r}")
        self._set_hyper(learning_rate, kwargs, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.amsgrad = bool(amsgrad)
        if self.amsgrad:
            self.slots = ("m", "v", "vhat") + tuple(s for s in self.slots if s not in ("m", "v"))

    def _switched_on_slots(self):
        return ("vhat",) if self.amsgrad else ()

    def _update(self, p, g, state, lr):
        _ops.adam_update(p, g, state["m"], state["v"], lr=lr, beta1=self.beta_1, beta2=self.beta_2,
                          eps=self.epsilon, step=self.iterations,
                          weight_decay=self.weight_decay or 0.0, decoupled=True,
                          vmax=state["vhat"] if self.amsgrad else None)

    def get_config(self):
        c = super().get_config()
        if self.amsgrad:  # only when used: older saved files stay identical
            c["amsgrad"] = True
        return c


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), Keras default weight_decay 0.004."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


schedules = _schedules  # Keras's place: fastnn.optimizers.schedules.ExponentialDecay, ...

_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad, "adam": Adam, "adamw": AdamW}
_CLASSES = {c.__name__: c for c in _BY_NAME.values()}


def get(identifier):
    """An Optimizer from a name, a class, an instance or a serialized dict."""
    def from_config(cls, cfg):
        if isinstance(cfg.get("learning_rate"), dict):
            cfg["learning_rate"] = _schedules.deserialize(cfg["learning_rate"])
        return cls(**cfg)
    return resolve(identifier, kind="optimizer", base=Optimizer, by_name=_BY_NAME, classes=_CLASSES,
                   expected="an Optimizer", from_config=from_config, lower=True)


def serialize(opt):
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


# Nadam, Adamax, Lion: NumPy-vectorized updates over the arena (no fused kernel yet)
from ._optimizers_more import Adamax, Lion, Nadam  # noqa: E402

_BY_NAME.update(nadam=Nadam, adamax=Adamax, lion=Lion)
_CLASSES.update({c.__name__: c for c in (Nadam, Adamax, Lion)})

# Keras's namespace: fastnn.optimizers.schedules.CosineDecay, from fastnn.optimizers.schedules import ...
schedules = _schedules
sys.modules[__name__ + ".schedules"] = _schedules
