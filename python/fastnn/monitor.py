"""Watching training from the inside, as the course notes' "babysitting the
learning process" section does: per-layer activation statistics (mean, std,
saturated fraction, dead ReLUs), gradient norms and the update/weight ratio
‖ΔW‖/‖W‖ per step. The course notes' rule of thumb for that ratio: about
1e-2 (:data:`HEALTHY_UPDATE_RATIO`); the cs231n notes say about 1e-3. Between
the two (1e-3 .. 1e-2) is fine; an order of magnitude below 1e-3 the learning
rate is probably too small, an order above 1e-2 too large.

* :func:`layer_outputs` / :func:`activation_stats` — one forward pass,
  each layer's output or its statistics.
* :func:`gradient_flow` — the gradient of every parameter tensor at the
  current (e.g. initial) weights: norms, std, grad/weight ratio, histograms.
* :class:`TrainingMonitor` — a callback for ``fit`` recording all of it per
  step into the History.
"""
from __future__ import annotations

import numpy as np

from ._layer_stats import _RELU_LIKE, _SATURATING, layer_statistics, saturation_fraction  # noqa: F401
from .callbacks import Callback

__all__ = ["layer_outputs", "activation_stats", "TrainingMonitor", "saturation_fraction",
           "gradient_flow", "GradientFlow", "HEALTHY_UPDATE_RATIO", "UPDATE_RATIO_BAND"]

HEALTHY_UPDATE_RATIO = 1e-2          # the course notes' ‖ΔW‖/‖W‖ rule of thumb
UPDATE_RATIO_BAND = (1e-3, 1e-2)     # cs231n's 1e-3 .. the course notes' 1e-2

def _check_model(model):
    if not hasattr(model, "layers") or not hasattr(model, "layer_outputs"):
        raise TypeError(f"model: expected a fastnn Model, got {type(model).__name__}")


def layer_outputs(model, x, training: bool = False) -> dict:
    """Every layer's output for inputs ``x``: ``{layer name: array}``, in order
    (copies, in the model's dtype). Inference mode by default (dropout off,
    BatchNorm on running statistics).

    >>> import numpy as np, fastnn
    >>> from fastnn.layers import Dense
    >>> from fastnn.monitor import layer_outputs
    >>> m = fastnn.Sequential([Dense(8, activation="tanh", input_dim=4), Dense(2)])
    >>> {k: v.shape for k, v in layer_outputs(m, np.ones((3, 4))).items()}  # doctest: +ELLIPSIS
    {'dense...': (3, 8), 'dense...': (3, 2)}
    """
    _check_model(model)
    return model.layer_outputs(x, training)


def activation_stats(model, x, training: bool = False) -> dict:
    """Per-layer activation statistics for inputs ``x``: ``{layer name:
    {"mean", "std", "saturated", "dead", "zero"}}``. ``saturated`` is the
    fraction of tanh/sigmoid outputs on a flat part (NaN for other
    activations), ``dead`` the fraction of ReLU units that output 0 for
    every example of ``x``, ``zero`` the fraction of ReLU outputs that are 0.

    >>> import numpy as np, fastnn
    >>> from fastnn.layers import Dense
    >>> from fastnn.monitor import activation_stats
    >>> big = fastnn.initializers.RandomNormal(stddev=3.0)
    >>> m = fastnn.Sequential([Dense(50, activation="tanh", input_dim=20, kernel_initializer=big)])
    >>> s = activation_stats(m, np.random.default_rng(0).normal(size=(100, 20)))
    >>> s[m.layers[0].name]["saturated"] > 0.8    # weights far too large: tanh saturates
    True
    """
    _check_model(model)
    return model.activation_stats(x, training)


class TrainingMonitor(Callback):
    """Records, every ``every`` training steps, each layer's activation
    statistics on a fixed probe batch, each parameter tensor's gradient norm
    and its update/weight ratio ‖ΔW‖/‖W‖ (ΔW: the change made by that step;
    the course notes: about 1e-2 is healthy, see the module).

    Per-step series go to ``history.monitor`` (a dict of lists, with
    ``"step"`` the global step index) of the History that ``fit`` returns
    and to ``self.steps``; per-epoch means go into ``history.history`` under
    ``act_mean/<layer>``, ``act_std/<layer>``, ``saturated/<layer>``,
    ``dead_relu/<layer>``, ``grad_norm/<layer>/<var>`` and
    ``update_ratio/<layer>/<var>``. Activations are measured in inference
    mode on ``probe``, after the step (default probe: the first 256 rows
    of the first training batch).

    Overhead: one copy of the parameters per recorded step and one forward
    pass on the probe batch; use ``every`` > 1 on big models.

    >>> from fastnn.monitor import TrainingMonitor
    >>> mon = TrainingMonitor(x_train[:256])                       # doctest: +SKIP
    >>> hist = model.fit(x_train, y_train, epochs=2, callbacks=[mon])  # doctest: +SKIP
    >>> hist.history["update_ratio/dense/kernel"]                 # doctest: +SKIP
    [0.0011, 0.0009]
    """

    def __init__(self, probe=None, every: int = 1, activations: bool = True):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every: expected an int >= 1, got {every!r}")
        self.probe = None if probe is None else np.asarray(probe)
        if self.probe is not None and (self.probe.ndim < 2 or self.probe.shape[0] == 0):
            raise ValueError(f"probe: expected shape (n, features) with n >= 1, got {self.probe.shape}")
        self.every = int(every)
        self.activations = bool(activations)
        self.steps = {}
        self._global = 0
        self._before = None

    # -- helpers -------------------------------------------------------------
    def _tensors(self):
        m = self.model
        return [(f"{layer.name}/{spec.name}", layer, spec.name, o, spec.size)
                for layer, spec, o in m._entries]

    def _record(self, key, value):
        self.steps.setdefault(key, []).append(float(value))

    # -- hooks ---------------------------------------------------------------
    def on_train_begin(self, logs=None):
        _check_model(self.model)
        self.steps = {}
        self._epoch_start = {}
        self._global = 0
        self._warned = False
        self._before = np.array(self.model._params, copy=True)  # step 0 is recorded
        hist = getattr(self.model, "history", None)
        if hist is not None:
            hist.monitor = self.steps

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = {k: len(v) for k, v in self.steps.items()}

    def on_train_batch_end(self, batch, logs=None):
        m = self.model
        step = self._global
        self._global += 1
        if step % self.every == 0:
            self._record_step(m, step, logs)
        if (step + 1) % self.every == 0:  # the next step is recorded: keep W before it
            if self._before is None or self._before.size != m._params.size:
                self._before = np.array(m._params, copy=True)
            else:
                np.copyto(self._before, m._params)

    def _record_step(self, m, step, logs):
        self._record("step", step)
        if logs and "loss" in logs:
            self._record("loss", logs["loss"])
        params = m._params
        for name, layer, v, o, size in self._tensors():
            w = params[o:o + size]
            wn = float(np.linalg.norm(w))
            self._record(f"grad_norm/{name}", np.linalg.norm(layer.grads[v]))
            self._record(f"weight_norm/{name}", wn)
            if self._before is not None and self._before.size == params.size:
                dn = float(np.linalg.norm(w - self._before[o:o + size]))
                self._record(f"update_ratio/{name}", dn / wn if wn > 0 else float("nan"))
        if not self.activations:
            return
        if self.probe is None:
            first = getattr(m.layers[0], "_x", None)  # the batch the first layer just saw
            if first is None:
                if not self._warned:
                    import warnings
                    warnings.warn("TrainingMonitor: no probe batch given and none found; "
                                  "activation statistics are skipped", RuntimeWarning, stacklevel=2)
                    self._warned = True
                return
            self.probe = np.array(first[:256], copy=True)
        for lname, st in activation_stats(m, self.probe).items():
            self._record(f"act_mean/{lname}", st["mean"])
            self._record(f"act_std/{lname}", st["std"])
            self._record(f"saturated/{lname}", st["saturated"])
            self._record(f"dead_relu/{lname}", st["dead"])

    def on_epoch_end(self, epoch, logs=None):
        hist = getattr(self.model, "history", None)
        if hist is None:
            return
        for key, vals in self.steps.items():
            if key in ("step", "loss") or key.startswith("weight_norm/"):
                continue
            new = np.asarray(vals[self._epoch_start.get(key, 0):], dtype=np.float64)
            # NaN when this epoch recorded nothing, so every list has one value per epoch
            mean = float(np.nanmean(new)) if np.any(np.isfinite(new)) else float("nan")
            hist.history.setdefault(key, []).append(mean)


class GradientFlow(dict):
    """``{tensor name: {"norm", "mean", "std", "weight_std", "ratio"}}`` from
    :func:`gradient_flow` (``ratio`` = std(grad) / std(W), NaN for a constant W),
    with ``grads`` ({name: gradient array}), ``loss`` and ``figure`` (the
    matplotlib Figure when a path was given, else None)."""

    grads: dict
    loss: float
    figure: object = None

    def __str__(self):
        w = max([len(k) for k in self] + [6])
        lines = [f"{'tensor'.ljust(w)}  {'grad norm':>10}  {'grad std':>10}  {'grad/W std':>10}"]
        for k, s in self.items():
            lines.append(f"{k.ljust(w)}  {s['norm']:>10.3g}  {s['std']:>10.3g}  {s['ratio']:>10.3g}")
        return "\n".join(lines)


def gradient_flow(model, x, y, path=None, bins=50, title=None) -> GradientFlow:
    """Gradient flow at the model's current weights (call it before ``fit`` to see
    it at initialization, the notes' check that every layer gets a gradient):
    the gradient of the loss on ``(x, y)`` as one batch, in training mode, for
    every trainable tensor, its norm, mean and std and its std relative to the
    weights'. Vanishing gradients show as norms shrinking toward the input,
    exploding ones as norms growing. With ``path``, one histogram per kernel is
    written there (:func:`fastnn.plots.gradient_histograms`), to put beside the
    activation histograms. The model is left exactly as it was (BatchNorm's
    moving statistics included).

    >>> import numpy as np, fastnn
    >>> from fastnn.layers import Dense
    >>> from fastnn.monitor import gradient_flow
    >>> m = fastnn.Sequential([Dense(8, activation="tanh", input_dim=4), Dense(2, activation="softmax")])
    >>> m.compile("sgd", "sparse_categorical_crossentropy")
    >>> rng = np.random.default_rng(0)
    >>> flow = gradient_flow(m, rng.normal(size=(32, 4)), rng.integers(0, 2, 32))
    >>> [k.split("/")[1] for k in flow], all(s["norm"] > 0 for s in flow.values())
    (['kernel', 'bias', 'kernel', 'bias'], True)
    """
    _check_model(model)
    if not getattr(model, "compiled", False):
        raise ValueError("model: compile it first; the gradient needs its loss "
                         "(model.compile(optimizer, loss))")
    saved = model.get_weights() if model.built else None
    try:
        loss, _ = model.compute_loss_and_gradients(x, y)
        flow = GradientFlow()
        flow.grads, flow.loss, flow.figure = {}, float(loss), None
        for layer in model.layers:
            if not layer.trainable:
                continue
            for spec in layer.specs:
                if not spec.trainable:
                    continue
                name = f"{layer.name}/{spec.name}"
                g = np.array(layer.grads[spec.name], dtype=np.float64)
                w = np.asarray(layer.vars[spec.name], dtype=np.float64)
                ws = float(w.std())
                flow.grads[name] = g
                flow[name] = {"norm": float(np.linalg.norm(g)), "mean": float(g.mean()),
                              "std": float(g.std()), "weight_std": ws,
                              "ratio": float(g.std() / ws) if ws > 0 else float("nan")}
    finally:
        if saved is not None:
            model.set_weights(saved)
    if path is not None:
        from .plots import gradient_histograms
        flow.figure = gradient_histograms(flow, path, bins=bins, title=title)
    return flow
