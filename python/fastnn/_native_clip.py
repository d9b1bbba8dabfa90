"""The native step's gradient clipping and weight constraints (native_step.py's plan):
Optimizer.apply's clipping (``clipnorm``, ``clipvalue``, ``global_clipnorm``) before the
update, and ``trainer.apply_constraints`` (MaxNorm, MinMaxNorm, UnitNorm, NonNeg) after it,
handed to the core plan (``NativeStep.set_clip``, ``set_constraints``) to call the kernels the
Python step calls (``ops.clip_by_global_norm``, ``ops.clip_by_value``, ``ops.norm_constraint``,
``ops.non_neg``) on the same arrays, in the same order: bitwise the same."""
from __future__ import annotations

import numbers

import numpy as np

from . import constraints as _constraints
from . import ops as _ops

# the constraint classes the plan computes, with the projection it mirrors (a class or an
# instance whose apply_ was replaced runs the Python step)
_APPLY = {c: c.apply_ for c in (_constraints.MaxNorm, _constraints.MinMaxNorm, _constraints.UnitNorm,
                                _constraints.NonNeg)}


def _real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and np.isfinite(v)


def clip_supported(opt):
    """Whether the plan can clip as ``opt.apply`` does (at most one of the three set, a real
    number > 0; another value is refused by check_hyperparameters before any step)."""
    given = [v for v in (opt.clipnorm, opt.clipvalue, opt.global_clipnorm) if v is not None]
    return len(given) <= 1 and all(_real(v) and v > 0 for v in given)


def _spec(c, shape):
    """(rule, outer, r, inner, min_value, max_value, rate), ("non_neg",) or None (Python step)."""
    if type(c) not in _APPLY or type(c).apply_ is not _APPLY[type(c)] or "apply_" in vars(c):
        return None
    if type(c) is _constraints.NonNeg:
        return ("non_neg",)
    try:
        view = _ops.constraint_view(shape, c.axis)
    except (TypeError, ValueError):  # the Python step raises it
        return None
    vals = [getattr(c, k, d) for k, d in (("min_value", 0.0), ("max_value", 1.0), ("rate", 1.0))]
    if view is None or not all(_real(v) for v in vals):
        return None
    lo, hi, rate = (float(v) for v in vals)
    if type(c) is not _constraints.UnitNorm and not (hi > 0 and 0 <= lo <= hi and 0 <= rate <= 1):
        return None
    rule = {_constraints.MaxNorm: "max_norm", _constraints.UnitNorm: "unit_norm"}.get(type(c), "min_max_norm")
    return (rule, *view, lo, hi, rate)


def constraints_supported(layer):
    """Whether the plan can apply every constraint of the layer's variables."""
    return all(s.constraint is None or _spec(s.constraint, s.shape) is not None for s in layer.specs)


def _attr(v):
    """A constraint's attribute as the plan's key holds it (an object other than a plain number
    or tuple by identity: its comparison may not be a bool)."""
    return v if type(v) in (float, int, bool, tuple, type(None)) else (type(v), id(v))


def constraints_key(model):
    """What the plan copied from the constraints (read at every step, so cheap): another
    constraint, projection method, value, axis or trainable flag rebuilds it."""
    return tuple((id(layer), s.name, id(c), type(c), type(c).apply_, vars(c).get("apply_"), bool(layer.trainable),
                  *(_attr(getattr(c, k, None)) for k in ("axis", "min_value", "max_value", "rate")))
                 for layer, s, _ in model.arena.entries if (c := s.constraint) is not None)


def attach(native, model):
    """The optimizer's clipping and the constraints into the plan ``native`` (as Optimizer.apply
    and trainer.apply_constraints run them now)."""
    opt, arena = model.optimizer, model.arena
    ranges, variables, _ = arena.layout()
    if opt.global_clipnorm is not None:
        native.set_clip("norm", float(opt.global_clipnorm), [[arena.grads[a:b] for a, b in ranges]])
    elif opt.clipnorm is not None:
        native.set_clip("norm", float(opt.clipnorm), [[arena.grads[a:b]] for a, b in variables])
    elif opt.clipvalue is not None:
        native.set_clip("value", float(opt.clipvalue), [[arena.grads[a:b] for a, b in ranges]])
    items = [(layer.vars[s.name], *_spec(s.constraint, s.shape)) for layer, s, _ in arena.entries
             if s.constraint is not None and layer.trainable]
    if items:
        native.set_constraints(items)
