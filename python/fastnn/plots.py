"""Plots of training runs, saved to PNG (needs matplotlib: ``pip install fastnn[plot]``).

* :func:`learning_curves` — loss and metrics per epoch, train vs validation.
* :func:`compare_runs` — one quantity per epoch for several runs (activations,
  optimizers, learning rates side by side).
* :func:`activation_histograms` — one histogram of activations per layer.
* :func:`update_ratio_curves` — ‖ΔW‖/‖W‖ per step and weight tensor, with a
  line at the course notes' rule of thumb (about 1e-2) and the band down to
  cs231n's 1e-3 shaded.
* :func:`gradient_histograms` — one histogram of gradients per kernel, with
  its norm (:func:`fastnn.monitor.gradient_flow`).
* :func:`lr_range_plot` — loss against learning rate for :func:`fastnn.tuning.lr_range_test`.

Each returns the matplotlib Figure and, given ``path``, writes the PNG there.
matplotlib is imported only when a plot is made, with the non-interactive
``Agg`` backend unless another one is already active.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["learning_curves", "compare_runs", "activation_histograms", "update_ratio_curves",
           "lr_range_plot", "std_per_layer_plot", "gradient_histograms"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("fastnn's plots need matplotlib: pip install 'fastnn[plot]' "
                          "(or pip install matplotlib)") from None
    import sys
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(str(path), dpi=100)
    return fig


def _finish_log_axes(fig, ax, path, title, xlabel, ylabel, **legend):
    """Labels, a grid on both tick levels, the legend and the title of a one-axes figure;
    then saves or returns it as :func:`_finish` does."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(**legend)
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def _history_dict(history, name="history"):
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise TypeError(f"{name}: expected a History or a dict of per-epoch lists, "
                        f"got {type(history).__name__}")
    return h


def learning_curves(history, path=None, metrics=None, title=None):
    """Loss and each metric per epoch, training against validation, one panel
    per quantity.

    ``history`` is a History (or its ``.history`` dict); ``metrics`` picks
    the quantities (default: every key without the ``val_`` prefix that
    holds one number per epoch, loss first).

    >>> from fastnn.plots import learning_curves
    >>> fig = learning_curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, "/tmp/lc.png")  # doctest: +SKIP
    """
    h = _history_dict(history)
    if metrics is None:
        metrics = [k for k in h if not k.startswith("val_") and _per_epoch(h[k])]
        metrics.sort(key=lambda k: (k != "loss", k))
    elif isinstance(metrics, str):
        metrics = [metrics]
    if not metrics:
        raise ValueError(f"history: no per-epoch quantity to plot (keys: {sorted(h)})")
    for m in metrics:
        if m not in h:
            raise ValueError(f"metrics: {m!r} is not in the history (keys: {sorted(h)})")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        epochs = np.arange(1, len(h[m]) + 1)
        ax.plot(epochs, h[m], "o-", ms=3, label="train")
        if "val_" + m in h and len(h["val_" + m]):
            ax.plot(np.arange(1, len(h["val_" + m]) + 1), h["val_" + m], "s--", ms=3,
                    label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def compare_runs(runs, metrics="loss", path=None, title=None, log_scale=False):
    """One panel per quantity, one line per run: how the notes compare settings
    (activations, optimizers, learning rates) on the same data.

    ``runs`` maps a label to a History, its ``.history`` dict, or a per-epoch list
    (then the one quantity ``metrics`` names, for the axis label). ``metrics``: a key
    or a list of keys of the histories, e.g. ``("loss", "val_accuracy")``.
    ``log_scale``: logarithmic y axes.

    >>> fig = compare_runs({"relu": h1, "tanh": h2}, ("loss", "val_accuracy"))  # doctest: +SKIP
    """
    if not isinstance(runs, dict) or not runs:
        raise ValueError(f"runs: expected a non-empty dict of label -> history, got {runs!r:.60}")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("metrics: expected at least one quantity to plot")
    series = {}
    for label, run in runs.items():
        if isinstance(run, (list, tuple, np.ndarray)):
            if len(metrics) != 1:
                raise ValueError(f"runs[{label!r}]: a per-epoch list is one quantity, but metrics "
                                 f"names {len(metrics)}")
            series[label] = {metrics[0]: run}
            continue
        h = _history_dict(run, f"runs[{label!r}]")
        for m in metrics:
            if m not in h:
                raise ValueError(f"metrics: {m!r} is not in runs[{label!r}] (keys: {sorted(h)})")
        series[label] = h
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for label, h in series.items():
            ax.plot(np.arange(1, len(h[m]) + 1), h[m], "o-", ms=3, label=label)
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def _per_epoch(v):
    try:
        return len(v) > 0 and all(np.isscalar(e) for e in v)
    except TypeError:
        return False


def _histogram_grid(arrays, path, title, color, hist_kwargs, label):
    """One histogram per name -> array (finite values only), up to 5 a row, each titled
    ``label(name, values)``; unused cells are blanked."""
    plt = _pyplot()
    n = len(arrays)
    cols = min(n, 5)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.3 * rows), squeeze=False)
    for ax, (name, a) in zip(axes.flat, arrays.items()):
        a = np.asarray(a, dtype=np.float64).ravel()
        a = a[np.isfinite(a)]
        ax.hist(a, color=color, **hist_kwargs)
        ax.set_title(label(name, a), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def activation_histograms(activations, path=None, bins=50, title=None, range=None):
    """One histogram per layer of its activation values (the notes' init figures).

    ``activations`` maps layer name -> array of that layer's outputs (as from
    :func:`fastnn.monitor.layer_outputs`), in order.

    >>> import numpy as np
    >>> from fastnn.plots import activation_histograms
    >>> acts = {"dense": np.random.default_rng(0).normal(size=(100, 50))}
    >>> fig = activation_histograms(acts, "/tmp/hist.png")  # doctest: +SKIP
    """
    if not isinstance(activations, dict) or not activations:
        raise TypeError("activations: expected a non-empty dict of layer name -> array")
    return _histogram_grid(activations, path, title, "C0", dict(bins=bins, range=range),
                           lambda name, a: f"{name}\nmean {a.mean():.2g} std {a.std():.2g}")


def std_per_layer_plot(stds, path=None, title=None):
    """Activation std per layer for several set-ups (``{label: [std per layer]}``),
    log scale: the notes' "std shrinks to zero / saturates" picture.

    >>> from fastnn.plots import std_per_layer_plot
    >>> fig = std_per_layer_plot({"0.01": [0.2, 0.004, 1e-4]}, "/tmp/std.png")  # doctest: +SKIP
    """
    if not isinstance(stds, dict) or not stds:
        raise TypeError("stds: expected a non-empty dict of label -> list of std per layer")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for label, s in stds.items():
        s = np.asarray(s, dtype=np.float64)
        ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-30), "o-", ms=3, label=str(label))
    return _finish_log_axes(fig, ax, path, title, "layer", "activation std", fontsize=8)


def update_ratio_curves(ratios, path=None, title=None, healthy=1e-2, band=(1e-3, 1e-2)):
    """‖ΔW‖/‖W‖ per training step for each weight tensor, log scale, with a
    line at ``healthy`` (the course notes' rule of thumb: about 1e-2) and the
    ``band`` shaded (1e-3, cs231n's number, to the notes' 1e-2). An order of
    magnitude below the band, the learning rate is probably too small; an
    order above it, too large. ``healthy=None`` / ``band=None`` draw neither.

    ``ratios`` maps tensor name -> sequence of ratios per step (the
    ``update_ratio/<name>`` lists a :class:`fastnn.monitor.TrainingMonitor`
    records), or is a History / dict holding such keys.

    >>> from fastnn.plots import update_ratio_curves
    >>> fig = update_ratio_curves({"dense/kernel": [1e-2, 5e-3]}, "/tmp/ur.png")  # doctest: +SKIP
    """
    h = getattr(ratios, "history", ratios)
    if not isinstance(h, dict):
        raise TypeError(f"ratios: expected a dict of name -> ratios per step, "
                        f"got {type(ratios).__name__}")
    prefixed = {k[len("update_ratio/"):]: v for k, v in h.items() if k.startswith("update_ratio/")}
    series = prefixed or h
    if not series:
        raise ValueError("ratios: nothing to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, v in series.items():
        v = np.asarray(v, dtype=np.float64)
        ax.semilogy(np.arange(1, len(v) + 1), np.where(v > 0, v, np.nan), lw=1, label=name)
    if band:
        ax.axhspan(band[0], band[1], color="C2", alpha=0.12, label=f"{band[0]:g} .. {band[1]:g}")
    if healthy:
        ax.axhline(healthy, color="k", ls=":", lw=1, label=f"{healthy:g} (notes)")
    return _finish_log_axes(fig, ax, path, title, "step", "‖ΔW‖ / ‖W‖", fontsize=7, ncol=2)


def lr_range_plot(result, path=None, title=None):
    """Loss against learning rate (log axis) from :func:`fastnn.tuning.lr_range_test`,
    marking the steepest descent, the minimum and the divergence point.

    >>> r = lr_range_test(build_fn, x, y)        # doctest: +SKIP
    >>> lr_range_plot(r, "/tmp/lr.png")          # doctest: +SKIP
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    lrs = np.asarray(result.lrs)
    ax.semilogx(lrs, result.losses, color="0.7", lw=1, label="loss per step")
    ax.semilogx(lrs, result.smoothed, color="C0", lw=2, label="smoothed")
    ax.axvline(result.steepest_lr, color="C2", ls="--", label=f"steepest {result.steepest_lr:.2g}")
    ax.axvline(result.min_loss_lr, color="C1", ls=":", label=f"minimum {result.min_loss_lr:.2g}")
    if result.diverged_lr is not None:
        ax.axvline(result.diverged_lr, color="C3", ls="-.",
                   label=f"diverged {result.diverged_lr:.2g}")
    finite = np.asarray(result.smoothed)[np.isfinite(result.smoothed)]
    if finite.size:
        lo, hi = finite.min(), finite[0]
        ax.set_ylim(lo - 0.1 * abs(hi - lo) - 1e-3, max(hi, lo) * 1.5 + 1e-3)
    return _finish_log_axes(fig, ax, path, title, "learning rate", "training loss", fontsize=8)


def gradient_histograms(flow, path=None, bins=50, title=None):
    """One histogram per kernel of its gradient, titled with the gradient norm and
    std(grad)/std(W): the notes' gradient-flow picture at initialization.

    ``flow`` is a :class:`fastnn.monitor.GradientFlow` (or a dict name -> gradient
    array); biases and other non-kernel tensors are left out when kernels exist.

    >>> flow = fastnn.monitor.gradient_flow(model, x[:256], y[:256])   # doctest: +SKIP
    >>> gradient_histograms(flow, "/tmp/grads.png")                    # doctest: +SKIP
    """
    grads = getattr(flow, "grads", flow)
    if not isinstance(grads, dict) or not grads:
        raise TypeError("flow: expected a GradientFlow or a non-empty dict of name -> gradient array")
    kernels = {k: v for k, v in grads.items() if k.endswith("/kernel")} or grads

    def label(name, g):
        stats = flow.get(name) if isinstance(flow, dict) and name in flow and \
            isinstance(flow.get(name), dict) else None
        extra = f" ratio {stats['ratio']:.2g}" if stats else ""
        return f"{name}\nnorm {np.linalg.norm(g):.2g}{extra}"
    return _histogram_grid(kernels, path, title, "C1", dict(bins=bins), label)
