"""Sample weights and ``weighted_metrics`` for a model with several outputs, as Keras 3:

- ``sample_weight``: one array (every output's loss and weighted metrics weigh each row by
  it), or one array per output (a list in output order, or a dict keyed by output names);
  packed as a ``(n, outputs)`` array of rows so that shuffling and batching treat it as one.
- ``class_weight`` is refused, as Keras 3 refuses it ("only supported for Models with a
  single output"): give per-output ``sample_weight`` instead.
- ``compile(weighted_metrics=...)``: a list with one entry per output (a metric, a list of
  metrics or None) or a dict keyed by output names; a plain string, or a list whose length
  is not the number of outputs, is refused as Keras 3 refuses it. Logged as
  ``<output>_<name>``, or ``<output>_weighted_<name>`` when an earlier metric has that name.

Called by ``fastnn.multi_io`` (compile, the metrics, the loss) and ``fastnn._sources`` (the
weights given to fit / evaluate / train_on_batch / test_on_batch).
"""
from __future__ import annotations

import numpy as np

from . import _weights
from . import metrics as _metrics


def _one_metric(m):
    return isinstance(m, (str, _metrics.Metric, _metrics.StreamingMetric))


def compile_weighted(weighted_metrics, names, losses, widths):
    """``{output: [metrics]}`` of ``compile(weighted_metrics=...)`` for outputs ``names``
    (each metric checked against its output's loss and width), or [] when none are given."""
    if weighted_metrics is None:
        return []
    if not isinstance(weighted_metrics, (list, tuple, dict)):
        raise ValueError(f"weighted_metrics: expected a list, tuple or dict (one entry per output of "
                         f"{names}), got {weighted_metrics!r} of type {type(weighted_metrics).__name__}")
    if not weighted_metrics:
        return []
    if isinstance(weighted_metrics, dict):
        unknown = [k for k in weighted_metrics if k not in names]
        if unknown:
            raise ValueError(f"weighted_metrics: unknown output names {unknown}; the outputs are {names}")
        per = [weighted_metrics.get(n) for n in names]
    else:
        if len(weighted_metrics) != len(names):
            raise ValueError(f"weighted_metrics: a model with {len(names)} outputs {names} takes one entry per "
                             f"output (a metric, a list of metrics or None) or a dict keyed by output names, "
                             f"got {len(weighted_metrics)} entries: {weighted_metrics!r}")
        per = list(weighted_metrics)
    spec = {}
    for n, loss, width, ms in zip(names, losses, widths, per):
        ms = [] if ms is None else [ms] if _one_metric(ms) else ms
        if not isinstance(ms, (list, tuple)):
            raise ValueError(f"weighted_metrics: expected metrics for output {n!r}, got {ms!r}")
        for m in ms:
            _metrics.get(m, loss.name, width)  # validates the name
        spec[n] = list(ms)
    return spec


def weighted_metric_objects(model, io, losses, taken):
    """The weighted metrics of a model with several outputs, tagged ``_out`` and
    ``_weighted``; ``taken``: the names logged before them (the unweighted metrics')."""
    spec = model._weighted_metric_names or {}
    out, taken = [], set(taken)
    for i, (n, loss) in enumerate(zip(io.out_names, losses)):
        for s in spec.get(n) or []:
            m = _metrics.own(s, loss.name, io.out_shapes[i][-1])
            name = f"{n}_{m.name}"
            if name in taken:
                base = name = f"{n}_weighted_{m.name}"
                k = 0
                while name in taken:
                    k += 1
                    name = f"{base}_{k}"
            m.name, m._out, m._weighted = name, i, True
            taken.add(name)
            out.append(m)
    return out


def refuse_class_weight(model, class_weight):
    if class_weight is not None and getattr(model, "_io", None) is not None and len(model._io.out_names) > 1:
        raise ValueError(f"class_weight: only supported for models with a single output (as Keras 3); this "
                         f"model has outputs {model._io.out_names}: give sample_weight per output instead")


def by_name(value, names, what, kind):
    """The values of dict ``value`` in the order of ``names`` (the model's inputs or outputs):
    exactly those keys, or a ValueError naming the missing and unknown ones."""
    missing = [n for n in names if n not in value]
    unknown = [k for k in value if k not in names]
    if missing or unknown:
        raise ValueError(f"{what}: expected a dict keyed by the model's {kind} {names}, got keys "
                         f"{list(value)} (missing {missing}, unknown {unknown})")
    return [value[n] for n in names]


def _is_per_output(sw):
    """A list of arrays (None for a missing one), not one list of numbers."""
    return isinstance(sw, (list, tuple)) and any(a is not None and np.ndim(a) >= 1 for a in sw) and \
        all(a is None or np.ndim(a) >= 1 for a in sw)


def check_sample_weight(model, sw, n, dtype, check_one):
    """The checked weights: None, one ``(n,)`` array for every output, or ``(n, outputs)``
    with a column per output. ``check_one(array, n, where, dtype)`` checks one array."""
    io = getattr(model, "_io", None)
    if sw is None or io is None or len(io.out_names) == 1:
        return check_one(sw, n, "", dtype)
    names = io.out_names
    if isinstance(sw, dict):
        cols = by_name(sw, names, "sample_weight", "outputs")
    elif _is_per_output(sw):
        if len(sw) != len(names):
            raise ValueError(f"sample_weight: expected one array for every output or one per output "
                             f"({len(names)}: {names}), got a list of {len(sw)} arrays")
        cols = list(sw)
    else:
        return check_one(sw, n, "", dtype)
    for k, c in zip(names, cols):
        if c is None:
            raise ValueError(f"sample_weight[{k!r}]: expected an array of {n} weights, got None")
    checked = [check_one(c, n, f"[{k!r}]", dtype) for k, c in zip(names, cols)]
    return np.ascontiguousarray(np.stack(checked, axis=1))


def column(sw, i):
    """Output ``i``'s weights of a batch's ``sw`` (None, one array for all, or a column each)."""
    return sw if sw is None or sw.ndim == 1 else sw[:, i]


def weighted_loss(mol, outs, y, sw, logits, **kwargs):
    """``MultiOutputLoss``'s ``(sum(weight_i * loss_i), [weight_i * dloss_i])``, each output's
    loss weighted by its sample weights when ``sw`` is given (Keras's ``sum_over_batch_size``:
    ``sum_i w_i l_i / m``); the unweighted-by-``loss_weights`` ``loss_i`` kept in ``mol.last``."""
    ys = mol.unpack(y)
    flags = logits if isinstance(logits, (tuple, list)) else (logits,) * len(mol.losses)
    total, ds = 0.0, []
    for i, (loss, w) in enumerate(zip(mol.losses, mol.weights)):
        wi = column(sw, i)
        if wi is not None and not wi.flags.c_contiguous:
            buf = mol._wbufs.get((i, wi.shape[0]))
            if buf is None or buf.dtype != wi.dtype:
                buf = mol._wbufs[(i, wi.shape[0])] = np.empty(wi.shape, dtype=wi.dtype)
            np.copyto(buf, wi)
            wi = buf
        if wi is None:
            value, d = loss.value_and_grad(outs[i], ys[i], flags[i], **kwargs)
        else:
            value, d = _weights.weighted_value_and_grad(loss, outs[i], ys[i], wi, flags[i])
        mol.last[i] = float(value)
        total += w * float(value)
        if w != 1.0:
            d *= d.dtype.type(w)
        ds.append(d)
    return total, ds
