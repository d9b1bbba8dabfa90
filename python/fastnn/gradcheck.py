"""Gradient checking: compare the analytic gradients of a model (or one layer)
with centred finite differences, the first check of the course notes.

The check runs on a float64 copy of the model (the original is untouched),
with dropout layers removed (their random masks would change between the
two evaluations of the difference quotient) and regularization *on*, so the
penalty's gradient is checked too. BatchNorm runs in training mode, as in a
training step. For each parameter tensor it reports the relative error

    ‖g − ĝ‖ / (‖g‖ + ‖ĝ‖)        g analytic, ĝ numerical

with the notes' reading: below 1e-7 great, about 1e-5 worth a look (fine
with kinks such as ReLU at 0), above 1e-3 the gradient is wrong.

Two cases the ratio misjudges get their own verdict:

- ``zero``: both gradients are at round-off level, e.g. a Dense bias before
  BatchNorm, whose true gradient is exactly zero: the ratio of two round-off
  noises says nothing. Such a tensor (analytic gradient below 1e-10, the
  difference quotient below its round-off ``10 * float64 eps * |loss| / eps``)
  is measured again with a wide step (1e-3), where round-off is 1e4 times
  smaller; if that too is below 1e-10 the report says ``zero (both below 1e-10)``.
  A small but nonzero true gradient shows up at the wide step and stays ``wrong``.
- ``kink``: some checked inputs cross a non-differentiable point within
  ``±eps`` (ReLU, leaky ReLU, PReLU, ELU/SELU at 0, a Maxout tie), as the notes
  warn: there the difference quotient averages two one-sided slopes. Those
  elements are left out; if the rest agree, the verdict is ``kink``, not
  ``wrong``. A kink is seen when a layer's pattern (which side of 0 an output
  lies, which Maxout piece wins) differs between ``w + eps`` and ``w - eps``.

Use a few examples (2-10) and a small network: every checked element costs
two forward passes.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

__all__ = ["check_gradients", "check_layer", "GradientReport", "TensorCheck", "verdict"]


def verdict(rel_error: float) -> str:
    """The course notes' reading of a relative error (a tensor's check may instead
    be ``zero`` or ``kink``, see the module).

    >>> from fastnn.gradcheck import verdict
    >>> verdict(1e-9), verdict(1e-6), verdict(1e-4), verdict(0.2)
    ('great', 'ok', 'check', 'wrong')
    """
    if not np.isfinite(rel_error):
        return "wrong"
    if rel_error < 1e-7:
        return "great"
    if rel_error < 1e-5:
        return "ok"
    if rel_error < 1e-3:
        return "check"
    return "wrong"


@dataclass
class TensorCheck:
    """One parameter tensor's check: its name (``layer/variable``), how many
    elements were compared, the relative error and the verdict (``great``,
    ``ok``, ``check``, ``wrong``, or ``zero`` / ``kink``, see the module), the
    largest element-wise absolute difference, how many checked elements crossed
    a kink, and a note explaining ``zero`` and ``kink``."""
    name: str
    checked: int
    size: int
    rel_error: float
    max_abs_diff: float
    verdict: str
    kinks: int = 0
    note: str = ""


class GradientReport(list):
    """A list of :class:`TensorCheck`, one per tensor, with ``ok`` (no tensor
    judged "wrong"; "zero" and "kink" are fine), ``worst`` and a table when printed."""

    @property
    def ok(self) -> bool:
        return all(c.verdict != "wrong" for c in self)

    @property
    def worst(self) -> TensorCheck:
        return max(self, key=lambda c: (np.nan_to_num(c.rel_error, nan=np.inf)))

    def __str__(self):
        w = max([len(c.name) for c in self] + [6])
        lines = [f"{'tensor'.ljust(w)}  {'checked':>9}  {'rel. error':>10}  verdict"]
        for c in self:
            lines.append(f"{c.name.ljust(w)}  {c.checked:>4}/{c.size:<4}  {c.rel_error:>10.2e}  "
                         f"{c.note or c.verdict}")
        return "\n".join(lines)


def _rel_error(g, n):
    denom = np.linalg.norm(g) + np.linalg.norm(n)
    if denom == 0:
        return 0.0
    return float(np.linalg.norm(g - n) / denom)


def _pick(size, max_per_tensor, rng):
    if max_per_tensor is None or size <= max_per_tensor:
        return np.arange(size)
    return np.sort(rng.choice(size, max_per_tensor, replace=False))


_KINKED = ("relu", "leaky_relu", "selu")  # elu too, unless alpha == 1 (then C1 at 0)


def _layer_pattern(layer):
    """Which side of each kink the layer's last forward pass was on (a copy), or None
    for a layer without kinks."""
    argmax = getattr(layer, "_argmax", None)  # Maxout: the winning piece
    if argmax is not None:
        return np.array(argmax)
    if type(layer).__name__ == "PReLU" and getattr(layer, "_x", None) is not None:
        return layer._x > 0
    act, y = getattr(layer, "_act", None), getattr(layer, "_y", None)
    if act is None or y is None:
        return None
    if act.name in _KINKED or (act.name == "elu" and act.alpha != 1.0):
        return y > 0  # same sign as the pre-activation for all of these
    return None


def _patterns(layers):
    return [p for p in (_layer_pattern(layer) for layer in layers) if p is not None]


def _crossed(a, b):
    return any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, b))


_ZERO = 1e-10   # both gradients below this: "zero"
_WIDE = 1e-3    # the step that confirms a zero gradient


def _judge(name, idx, size, g, num, crossed, zero):
    """The TensorCheck of analytic g vs numerical num at the checked elements."""
    err = _rel_error(g, num)
    diff = float(np.max(np.abs(g - num))) if idx.size else 0.0
    v, note, k = verdict(err), "", int(crossed.sum())
    if zero and v != "great":
        v, err = "zero", 0.0
        note = f"zero (both below {_ZERO:.0e})"
    elif k and v in ("check", "wrong"):
        keep = ~crossed
        rest = _rel_error(g[keep], num[keep])
        if verdict(rest) != "wrong":
            v = "kink"
            note = f"kink ({k} of {idx.size} cross a kink within ±eps; rel. error {rest:.1e} without them)"
    return TensorCheck(name, int(idx.size), int(size), err, diff, v, k, note)


def _compare(name, flat, analytic, f, eps, max_per_tensor, rng, layers=()):
    """Centered differences (f(w+eps) - f(w-eps)) / 2eps on sampled entries of the
    flat view ``flat`` (perturbed in place, then restored), against ``analytic``;
    an element whose kink pattern in ``layers`` differs between w+eps and w-eps is
    marked crossed."""
    idx = _pick(flat.size, max_per_tensor, rng)
    g = analytic.reshape(-1)[idx]
    num, crossed, scale = _differences(flat, idx, f, eps, layers)
    zero = False
    if idx.size and np.max(np.abs(g)) < _ZERO and \
            np.max(np.abs(num)) < max(_ZERO, 10 * np.finfo(np.float64).eps * scale / eps):
        wide = _differences(flat, idx, f, _WIDE, ())[0]
        zero = bool(np.max(np.abs(wide)) < _ZERO)
    return _judge(name, idx, flat.size, g, num, crossed, zero)


def _differences(flat, idx, f, eps, layers):
    """(centred differences at flat[idx], which elements crossed a kink, max |f| seen)."""
    num = np.empty(idx.size)
    crossed = np.zeros(idx.size, bool)
    scale = 0.0
    for j, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        pp = _patterns(layers)
        flat[i] = old - eps
        fm = f()
        crossed[j] = _crossed(pp, _patterns(layers))
        flat[i] = old
        num[j] = (fp - fm) / (2 * eps)
        scale = max(scale, abs(fp), abs(fm))
    return num, crossed, scale


def _check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not 0 < eps < 1:
        raise ValueError(f"eps: expected a small positive number such as 1e-7, got {eps!r}")


def _check_max(max_per_tensor):
    if max_per_tensor is not None and (isinstance(max_per_tensor, bool) or
                                       not isinstance(max_per_tensor, (int, np.integer)) or
                                       max_per_tensor < 1):
        raise ValueError(f"max_per_tensor: expected None or an int >= 1, got {max_per_tensor!r}")


def _deepcopy(obj):
    """copy.deepcopy that keeps NumPy's builtin dtype objects as they are: the
    kernels' bindings accept only those (a deep-copied np.dtype is equal but
    not identical, and is rejected)."""
    memo = {}
    for t in (np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_):
        d = np.dtype(t)
        memo[id(d)] = d
    return copy.deepcopy(obj, memo)


def _copy_model(model, drop_dropout=True, dtype=None):
    """A deep copy of ``model``, without dropout layers if asked, in ``dtype``."""
    from . import layers as _layers
    clone = _deepcopy(model)
    if drop_dropout:
        # fresh randomness at every call: no gradient to compare
        random = (_layers.Dropout, _layers.AlphaDropout, _layers.GaussianNoise, _layers.GaussianDropout,
                  _layers.RandomFlip, _layers.RandomTranslation)
        clone.layers = [layer for layer in clone.layers if not isinstance(layer, random)]
    if dtype is not None:
        clone.dtype = np.dtype(dtype)
    clone.built = False
    clone.build(clone._input_shape)
    return clone


def _float64_copy(model):
    """A float64 deep copy of ``model`` without dropout layers."""
    return _copy_model(model, True, np.float64)


def _tensors(model):
    """(name, layer, variable name) of every trainable parameter tensor."""
    out = []
    for layer, spec, _ in model._entries:
        if layer.trainable:
            out.append((f"{layer.name}/{spec.name}", layer, spec.name))
    return out


def _objective(model, x, y, with_grads):
    """Loss with the penalty; with_grads: also fills the model's gradient arena."""
    loss_on_logits, last_logits = model._loss_mode()
    out = model._forward(x, True, last_logits)
    loss, d = model.loss.value_and_grad(out, y, loss_on_logits)
    if with_grads:
        model._grads[...] = 0
        model._backward(d, 0)  # reverse topological order; a graph's shared layers summed
    penalty = model._regularization(grads=with_grads)
    return float(loss) + float(penalty)


def check_gradients(model, x, y, eps: float = 1e-7, max_per_tensor: int | None = None,
                    seed: int = 0) -> GradientReport:
    """Check every trainable tensor's gradient of a compiled ``model`` on ``(x, y)``.

    Returns a :class:`GradientReport` (one :class:`TensorCheck` per tensor,
    in model order). ``max_per_tensor`` compares only that many randomly
    chosen elements of each tensor (the relative error is then over those
    elements); None checks them all. The model itself is not modified.

    >>> import numpy as np, fastnn
    >>> from fastnn.layers import Dense
    >>> from fastnn.gradcheck import check_gradients
    >>> m = fastnn.Sequential([Dense(5, activation="tanh", input_dim=4), Dense(3, activation="softmax")])
    >>> m.compile("sgd", "sparse_categorical_crossentropy", regularizer="l2")
    >>> rng = np.random.default_rng(0)
    >>> report = check_gradients(m, rng.normal(size=(6, 4)), rng.integers(0, 3, 6))
    >>> report.ok, [c.verdict for c in report]
    (True, ['great', 'great', 'great', 'great'])
    """
    _check_eps(eps)
    _check_max(max_per_tensor)
    if not getattr(model, "compiled", False):
        raise ValueError("model: compile it first; the check needs its loss "
                         "(model.compile(optimizer, loss))")
    several = isinstance(x, dict) or (getattr(model, "_n_in", 1) > 1 and isinstance(x, (list, tuple)))
    xs = (list(x.values()) if isinstance(x, dict) else list(x)) if several else [x]
    for xa in map(np.asarray, xs):
        if xa.ndim < 2 or xa.shape[0] == 0:
            raise ValueError(f"x: expected shape (n, features) with n >= 1, got {xa.shape}")
        if xa.shape[0] > 64:
            raise ValueError(f"x: {xa.shape[0]} examples; gradient checking needs only a few "
                             "(2-10): each checked element costs two forward passes")
    if not model.built:
        model.build(np.asarray(x).shape[1:])
    clone = _float64_copy(model)
    if several:
        x64 = ({k: np.asarray(v, dtype=np.float64) for k, v in x.items()} if isinstance(x, dict)
               else [np.asarray(v, dtype=np.float64) for v in x])
    else:
        x64 = np.asarray(x, dtype=np.float64)
    xx, yy = clone._prepare_xy(x64, y)
    _objective(clone, xx, yy, with_grads=True)
    analytic = {name: np.array(layer.grads[v], dtype=np.float64)
                for name, layer, v in _tensors(clone)}
    rng = np.random.default_rng(seed)
    report = GradientReport()

    def f():
        return _objective(clone, xx, yy, False)
    for name, layer, v in _tensors(clone):
        w = layer.vars[v].reshape(-1)  # a view into the arena
        report.append(_compare(name, w, analytic[name], f, eps, max_per_tensor, rng, clone.layers))
    return report


def check_layer(layer, x, eps: float = 1e-7, seed: int = 0,
                max_per_tensor: int | None = None) -> GradientReport:
    """Check one layer's backward pass: its parameter gradients and its input
    gradient (reported as ``<name>/input``), against centred differences of
    ``sum(forward(x) * dy)`` for a random upstream gradient ``dy``.

    The layer is copied into a float64 one-layer model; the original is not
    modified. Dropout layers have no meaningful check (random masks).

    >>> import numpy as np
    >>> from fastnn.layers import Dense
    >>> from fastnn.gradcheck import check_layer
    >>> report = check_layer(Dense(4, activation="sigmoid"), np.random.default_rng(0).normal(size=(3, 5)))
    >>> [c.name.split("/")[1] for c in report], report.ok
    (['kernel', 'bias', 'input'], True)
    """
    from . import layers as _layers
    from .models import Sequential
    _check_eps(eps)
    _check_max(max_per_tensor)
    if not isinstance(layer, _layers.Layer):
        raise TypeError(f"layer: expected a fastnn layer, got {type(layer).__name__}")
    if isinstance(layer, (_layers.Dropout, _layers.AlphaDropout, _layers.GaussianNoise, _layers.GaussianDropout,
                          _layers.RandomFlip, _layers.RandomTranslation)):
        raise ValueError(f"layer: a {type(layer).__name__} layer draws fresh randomness at every call, "
                         f"no gradient to check")
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim < 2 or xa.shape[0] == 0:
        raise ValueError(f"x: expected shape (n, features...) with n >= 1, got {xa.shape}")
    lay = _deepcopy(layer)
    lay._arena = None
    model = Sequential([_layers.Input(xa.shape[1:]), lay], dtype="float64")
    if layer.built and layer.vars:
        model.set_weights(layer.get_weights())
    rng = np.random.default_rng(seed)
    xx = np.ascontiguousarray(xa)
    y0 = lay.forward(xx.copy(), True)
    dy = rng.normal(size=y0.shape)

    def f():  # with the loss the layer adds (ActivityRegularization): its backward includes that gradient
        y = lay.forward(xx.copy(), True)
        return float(np.sum(y * dy)) + (lay.activity_loss if getattr(lay, "adds_activity_loss", False) else 0.0)

    lay.forward(xx.copy(), True)
    model._grads[...] = 0
    dx = np.array(lay.backward(dy.copy(), True), dtype=np.float64)
    analytic = {f"{lay.name}/{s.name}": np.array(lay.grads[s.name], dtype=np.float64)
                for s in lay.specs if s.trainable}
    report = GradientReport()
    for s in lay.specs:
        if not s.trainable:
            continue
        name = f"{lay.name}/{s.name}"
        report.append(_compare(name, lay.vars[s.name].reshape(-1), analytic[name], f, eps, max_per_tensor,
                               rng, [lay]))
    report.append(_compare(f"{lay.name}/input", xx.reshape(-1), dx, f, eps, max_per_tensor, rng, [lay]))
    return report
