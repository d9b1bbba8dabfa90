"""Population statistics of BatchNormalization (``Model.recompute_batchnorm_statistics``).

The course notes (and Ioffe & Szegedy 2015, section 3.1) define the test-time statistics of
a BN layer as averages over training mini-batches B of m rows each::

    E[x]   = mean over B of mu_B
    Var[x] = m / (m - 1) * mean over B of sigma2_B      (sigma2_B the biased batch variance)

PyTorch's ``torch.optim.swa_utils.update_bn`` does the same with a cumulative average.
Here, for the data ``x`` cut into consecutive batches of ``batch_size`` rows (no shuffle):

- each batch b of m_b rows gives mu_b and the unbiased v_b = m_b / (m_b - 1) * sigma2_b
  (exactly what a training step would give that layer, computed by the same kernel);
- moving_mean = sum_b m_b mu_b / sum_b m_b and moving_variance = sum_b m_b v_b / sum_b m_b,
  accumulated in float64. With equal batches this is the notes' plain average; a final
  smaller batch counts in proportion to its rows (update_bn counts it as a whole batch).
  A final batch of one row has no variance: refused, as fit refuses it.

The forward pass runs every other layer in inference mode (dropout and noise off) and
every BatchNormalization layer on its batch statistics, as in training (update_bn puts the
model in train mode for this); so a BN layer's statistics are those of its inputs as
training sees them, given the BN layers before it. Only the moving statistics change,
all at the end; weights, optimizer, seeds and dropout counters are untouched. Layers
after the last BN layer are not run.
"""
from __future__ import annotations

import numpy as np

from . import ops as _ops
from . import trainer as _trainer
from .layers import BatchNormalization


def _check_batch_size(batch_size, n):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
        raise ValueError(f"batch_size: expected an int >= 2 (batch statistics need 2 rows), got {batch_size!r}")
    bs = min(int(batch_size), n)
    if n < 2 or n % bs == 1:
        raise ValueError(f"batch_size: {bs} on {n} samples leaves a batch of 1 row, which has no variance; "
                         f"choose a batch_size that leaves at least 2 rows in the last batch")
    return bs


def _forward_collect(model, xb, stop, acc):
    """Forward of nodes[:stop] on one batch, BN layers on batch statistics; adds
    (m * mean, m * unbiased var) of each BN layer's batch to ``acc``."""
    nodes = model._nodes
    vals = [xb]
    m = xb.shape[0]
    for k, node in enumerate(nodes[:stop]):
        layer = node.layer
        ins = [vals[i] for i in node.inbound]
        a = ins[0] if len(ins) == 1 else ins
        if isinstance(layer, BatchNormalization):
            gamma, beta = layer._gamma_beta()
            run_mean, run_var = np.zeros_like(gamma), np.ones_like(gamma)  # momentum 0: the batch's own
            y, _, _ = _ops.batchnorm_forward(a, gamma, beta, run_mean, run_var, momentum=0.0,
                                              eps=layer.epsilon, training=True)
            s_mean, s_var = acc[k]
            s_mean += m * run_mean.astype(np.float64)
            s_var += m * run_var.astype(np.float64)
        else:
            y = layer.forward(a, False)
        vals.append(y)


def recompute_batchnorm_statistics(model, x, batch_size=32):
    """Set every BatchNormalization layer's moving mean and variance to the population
    statistics over ``x`` (as PyTorch's ``swa_utils.update_bn``; the notes' test-time
    statistics), for the data cut into consecutive batches of ``batch_size`` rows:
    moving_mean = average of the batch means, moving_variance = average of the batch
    variances times m / (m - 1), each batch weighted by its rows (equal batches: the plain
    average; a final smaller batch in proportion to its size). The forward pass runs every
    BN layer on its batch statistics, as in training, and the other layers in inference
    mode (no dropout or noise). Nothing else changes. Returns the number of BN layers
    updated (0 when the model has none). Details: ``fastnn._bn_stats``.

    >>> import numpy as np, fastnn
    >>> from fastnn.layers import Dense, BatchNormalization
    >>> m = fastnn.Sequential([Dense(3, input_dim=2), BatchNormalization()])
    >>> x = np.random.default_rng(0).normal(size=(64, 2))
    >>> m.recompute_batchnorm_statistics(x, batch_size=16)
    1
    >>> h = x @ m.layers[0].get_weights()[0]
    >>> bool(np.allclose(m.layers[1].get_weights()[2], h.mean(0), atol=1e-6))
    True
    """
    xa = np.asarray(x) if x is not None else None
    x = _trainer.prepare_x(model, xa)  # checked before anything changes (the model may be unbuilt)
    n = x.shape[0]
    bs = _check_batch_size(batch_size, n)
    if not model.built:
        model.build(xa.shape[1:])
    model._ensure_placed()
    bn = [k for k, node in enumerate(model._nodes) if isinstance(node.layer, BatchNormalization)]
    if not bn:
        return 0
    acc = {k: (np.zeros(model._nodes[k].layer.input_shape[0]), np.zeros(model._nodes[k].layer.input_shape[0]))
           for k in bn}
    for s in range(0, n, bs):
        _forward_collect(model, x[s:s + bs], bn[-1] + 1, acc)
    for k in bn:
        layer = model._nodes[k].layer
        s_mean, s_var = acc[k]
        layer.vars["moving_mean"][...] = s_mean / n
        layer.vars["moving_variance"][...] = s_var / n
    return len(bn)
