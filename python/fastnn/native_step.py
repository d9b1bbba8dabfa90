"""The native training step: for a Sequential chain of Dense (float32, float64 or
mixed_bfloat16), Dropout (first too: input dropout), Activation, BatchNormalization,
LayerNormalization (2-D, last axis: _native_norm.py) and ActivityRegularization (not first:
_native_activity.py) layers (after any leading Flatten layers, whose output is a view of the
batch: the plan takes it flattened) with a fused loss (softmax cross-entropy on logits, sigmoid
(binary) cross-entropy on logits, both with label smoothing (_native_loss.py), mean squared
error, or (unweighted) mean absolute error or Huber) and Adam/AdamW (AMSGrad too), SGD (both
momentum forms, weight_decay), RMSprop (Keras's momentum, centered), Adagrad, Nadam, Adamax or
Lion (their NumPy operations one by one), one
training step is one call into the core (``_core.NativeStep.run``, GIL released).

The plan is built once per (batch size, dtype, arena layout, optimizer state, loss and hyperparameters)
from the layers' own buffers and the arena's views, and calls exactly the kernels the Python step
(``trainer.train_step``) calls, in the same order with the same arguments: bitwise the same. A mixed_bfloat16 Dense layer runs the
kernels of layers/_mixed.py (``matmul_bf16``'s forward, ``dense_bf16_backward``), its
output stored as bfloat16 bits exactly where Dense.forward stores it so. A Dense
activation whose gradient needs its input (gelu, swish, mish, softplus, ...) is a second
node, as Dense.forward runs it: the product into the layer's z buffer, then the activation.
Weight regularizers (L1, L2, L1L2, BatchMeanL2; per variable or model-wide) are computed in
the plan as ``trainer.regularization`` computes them (same kernels for the penalty, the same
rounding for the gradient, the same order); their coefficients are read at every call and
the penalty is returned with the loss. Sample weights (and class weights, fit's per-sample
weights) run the weighted loss kernels _weights.weighted_value_and_grad calls (not with mean
absolute error or Huber, which it weights in NumPy: the Python step runs them). Gradient
clipping and the constraints MaxNorm, MinMaxNorm, UnitNorm, NonNeg run in the plan
(_native_clip.py). Anything else (a softmax Activation layer or hidden softmax Dense layer that
does not feed the fused loss, a BatchNormalization whose batch or hyperparameters its kernel
refuses, an ActivityRegularization _native_activity.py does not take, another regularizer or
constraint class, other losses or optimizers) runs the Python step, with no error.
``FASTNN_NATIVE_STEP=0`` in the environment turns the native step off.
"""
from __future__ import annotations

import numbers
import os
import weakref

import numpy as np

from . import _core
from . import _native_activity as _nact
from . import _native_clip as _nclip
from . import _native_norm as _nnorm
from . import layers as _layers
from . import ops as _ops
from . import optimizers as _optimizers
from . import regularizers as _regularizers
from . import _native_optim
from . import _native_loss as _nloss
from ._native_loss import loss_kind as _loss_kind, smoothing as _smoothing, weighted_ok as _weighted_ok
from ._native_data import EpochData as _EpochData, scratch as _scratch, step_weights as _step_weights
from ._regularized import reg_list as _reg_list
from .layers import _mixed

_ADAM = (_optimizers.Adam, _optimizers.AdamW)
# the regularizers the plan computes (Regularizer.__call__ and add_gradient with their l1, l2)
_REGS = (_regularizers.L1, _regularizers.L2, _regularizers.L1L2, _regularizers.BatchMeanL2)
# model -> (key, plan or None): kept outside the model so that copying or pickling a model
# never meets a core object (a copy builds its own plan at its first step).
_PLANS: "weakref.WeakKeyDictionary[object, tuple]" = weakref.WeakKeyDictionary()


def enabled():
    """False when ``FASTNN_NATIVE_STEP=0`` (read at every fit, so tests can flip it)."""
    return os.environ.get("FASTNN_NATIVE_STEP", "1") != "0"


def _layer_act(layer, logits):
    """(kernel name, alpha, split) of a Dense layer's activation: split False when the fused
    GEMM epilogue applies it; True when its gradient needs its input (gelu, swish, ...):
    Dense.forward's product into the layer's z buffer, then the activation into y, as
    two nodes. None when the Python step must run it (softmax: row-wise, no kernel)."""
    act = layer._linear if logits else layer.activation
    if act.is_linear:
        return "identity", 0.0, False
    if act.kernel is None or act.name == "softmax":
        return None
    return act.kernel, float(_mixed.kernel_alpha(act)), bool(act.needs_input)


def _plain_numbers(opt, names):
    """True when the attributes are real numbers (set after construction, they are not checked:
    the Python step's kernels refuse what float() would take, such as "0.9")."""
    return all(isinstance(getattr(opt, n), numbers.Real) and not isinstance(getattr(opt, n), (bool, np.bool_))
               for n in names if getattr(opt, n, None) is not None)


def _optimizer_spec(opt):
    """("adam" | _native_optim.spec's names, hyper) or None when not supported natively."""
    if not _nclip.clip_supported(opt) or getattr(opt, "use_ema", False) \
            or not _plain_numbers(opt, ("beta_1", "beta_2", "epsilon", "weight_decay", "momentum", "rho",
                                        "initial_accumulator_value")):
        return None
    if type(opt) in _ADAM:
        return "adam", {"beta1": float(opt.beta_1), "beta2": float(opt.beta_2), "eps": float(opt.epsilon),
                        "weight_decay": float(opt.weight_decay or 0.0), "decoupled": True}
    return _native_optim.spec(opt)  # SGD, RMSprop, Adagrad, Nadam, Adamax, Lion, or None


def _hyper_key(opt):
    return (id(opt), opt.clipnorm, opt.clipvalue, opt.global_clipnorm, getattr(opt, "use_ema", None),
            getattr(opt, "weight_decay", None),
            getattr(opt, "beta_1", None), getattr(opt, "beta_2", None), getattr(opt, "epsilon", None),
            getattr(opt, "momentum", None), getattr(opt, "nesterov", None), getattr(opt, "momentum_form", None),
            getattr(opt, "amsgrad", None)) + _native_optim.key(opt)


def _supported_model(model):
    """The layer chain of the model, or None when its step must run in Python."""
    chain = model._chain
    items = _reg_list(model) if chain is not None and model._io is None else None
    if items is None or not all(_native_reg(r) for _, v, r in items if v is not None) \
            or not _nact.model_ok(model, chain, items):
        return None  # a regularizer of another kind, or ActivityRegularization nodes the plan cannot sum
    if np.dtype(model.dtype) not in (np.float32, np.float64):
        return None
    if list(model.arena.layers) != list(chain):
        return None
    for k, layer in enumerate(chain):
        if layer.dtype != model.dtype:
            return None  # another dtype: Python step
        if type(layer) is _layers.Flatten and all(type(l) is _layers.Flatten for l in chain[:k]):
            continue  # a leading Flatten: the batch's rows as the first layer's (a view; no node)
        if type(layer) is _layers.Dropout and 0.0 < layer.rate < 1.0 and len(layer.input_shape) == 1:
            continue  # (first too: input dropout on the batch's rows, the node's input is x)
        if (type(layer) not in (_layers.Dense, _layers.BatchNormalization, _layers.Activation)
                and not _nnorm.layernorm_supported(layer) and not _nact.supported(layer)) \
                or not _nclip.constraints_supported(layer):
            return None
    return chain


def _dense_entries(layer, m, k, first, logits):
    """Dense.forward/backward's buffers and kernel arguments as plan entries, or None;
    mixed_bfloat16: the bf16 products, the output stored as bfloat16 bits where
    Dense.forward would store it so. An activation whose gradient needs its input is a
    second node, as Dense.forward/backward run it: z = x @ W + b into ("z", m) (the
    identity epilogue), y = act(z) into ("y", m), and backward dz = act'(z) * dy in place
    before the affine backward. The layer above never fuses that gradient into its dx
    product (step.cpp act_grad_fusable: the Dense node's activation is the identity)."""
    act = _layer_act(layer, logits)
    if act is None:
        return None
    kernel, alpha, split = act
    trainable, mixed = layer.trainable, bool(layer._dtype_policy.is_mixed)
    if split:
        y = layer._buffer(("z", m), (m, layer.units))
    elif mixed and layer._bf16_readers and _mixed.stores_bf16(layer, layer._linear if logits else layer.activation,
                                                               True, logits):
        y = layer._buffer(("y16", m), (m, layer.units), np.uint16)
    else:
        y = layer._buffer(("y", m), (m, layer.units))
    dx = layer._buffer(("dx", m), (m, layer.vars["kernel"].shape[0])) if k > first else None
    dense = (layer.vars["kernel"], layer.vars.get("bias") if layer.use_bias else None,
             layer.grads["kernel"] if trainable else None,
             layer.grads.get("bias") if trainable and layer.use_bias else None, y, dx,
             "identity" if split else kernel, 0.0 if split else alpha, mixed)
    if not split:
        return [dense]
    return [dense, ("activation", layer._buffer(("y", m), (m, layer.units)), kernel, alpha)]


def _activation_entry(layer, m, logits):
    """("activation", y, kernel, alpha), () for the identity (no node: Activation.forward
    returns its input), or None when the Python step must run it (softmax)."""
    act = layer._linear if logits else layer.activation
    if act.is_linear:
        return ()
    if act.kernel is None or act.name == "softmax":
        return None
    n = layer.output_shape[-1]
    return "activation", layer._buffer(("y", m), (m, n)), act.kernel, float(_mixed.kernel_alpha(act))


def _batchnorm_entry(layer, m, dtype):
    """BatchNormalization.forward/backward's kernel arguments (training when the layer is
    trainable, else on its moving statistics), or None when the Python step must run it
    (it would refuse the batch or the hyperparameters)."""
    n, training = layer.output_shape[-1], bool(layer.trainable)
    eps, momentum = layer.epsilon, layer.momentum
    with np.errstate(over="ignore"):  # a huge epsilon is inf in float32: the kernel takes it
        eps_ok = np.isfinite(eps) and dtype.type(eps) > 0
    if (training and m < 2) or not eps_ok or not 0.0 <= momentum <= 1.0:
        return None
    gamma, beta = layer._gamma_beta()
    dx = dgamma = dbeta = scale = shift = None
    if training:  # dgamma and dbeta into the gradient arena (scratch when not learned)
        dx = layer._buffer(("dx", m), (m, n))
        dgamma = layer.grads["gamma"] if layer.scale else layer._buffer("dgamma", (n,))
        dbeta = layer.grads["beta"] if layer.center else layer._buffer("dbeta", (n,))
    else:
        scale, shift = np.empty(n, dtype), np.empty(n, dtype)
    return ("batchnorm", layer._buffer(("y", m), (m, n)), training, dx, gamma, beta, layer.vars["moving_mean"],
            layer.vars["moving_variance"], layer._buffer("mean", (n,)), layer._buffer("invstd", (n,)),
            dgamma, dbeta, scale, shift, float(momentum), float(eps))


def _entries(chain, m, first, last_logits, dtype):
    """(the plan's layer entries, the node the backward stops at, the Dropout layers in
    order, the output buffer) or None when a layer must run in Python."""
    entries, dropouts, node_first, out = [], [], None, None
    for k, layer in enumerate(chain):
        logits = last_logits and k == len(chain) - 1
        if k == first:
            node_first = len(entries)
        if type(layer) is _layers.Flatten:  # leading (_supported_model): the plan takes x flattened
            continue
        if type(layer) is _layers.Dropout:
            width = layer.output_shape[-1]
            e = ("dropout", layer._buffer(("y", m), (m, width)), layer._buffer(("mask", m), (m, width)),
                 float(layer.rate), len(dropouts))
            dropouts.append((layer, e[2]))
        elif type(layer) is _layers.Activation:
            e = _activation_entry(layer, m, logits)
        elif type(layer) is _layers.BatchNormalization:
            e = _batchnorm_entry(layer, m, np.dtype(dtype))
        elif type(layer) is _layers.LayerNormalization:
            e = _nnorm.layernorm_entry(layer, m, np.dtype(dtype))
        elif _nact.is_activity(layer):  # the identity: the layer below's output is its own
            e = _nact.entry(layer, out)
        else:
            e = _dense_entries(layer, m, k, first, logits)
        if e is None:
            return None
        nodes = e if isinstance(e, list) else [e] if e else []  # a Dense layer's: one or two
        for node in nodes:
            entries.append(node)
            out = node[1] if isinstance(node[0], str) else node[4]  # y
    if not entries:
        return None
    return entries, len(entries) if node_first is None else node_first, dropouts, out


def _build(model, chain, m, first, ranges, loss_kind, last_logits, opt_spec):
    """(the _core.NativeStep over the layers' buffers (the ones the Python step uses),
    its dropout seeds, [(Dropout, mask)]) and the output buffer, or None."""
    made = _entries(chain, m, first, last_logits, model.dtype)
    if made is None:
        return None
    entries, node_first, dropouts, out = made
    dlogits = np.empty(out.shape, dtype=model.dtype)
    opt = model.optimizer
    name, hyper = opt_spec
    arena = model.arena
    slots = _native_optim.slot_names(name, hyper, opt)
    views = []
    for a, b in ranges:
        s = [opt.state[n][a:b] if n is not None and n in opt.state else None for n in slots]
        views.append((arena.params[a:b], arena.grads[a:b], s[0], s[1], s[2]))
    seeds = np.zeros(len(dropouts), dtype=np.uint64)
    items = [it for it in _reg_list(model) if it[1] is not None]  # the weight penalties (activity: nodes)
    regs = [(l.vars[v], l.grads[v] if l.trainable else None) for l, v, _ in items]
    coefs = np.zeros((len(items), 2), dtype=np.float64)
    native = _core.NativeStep(entries, node_first, loss_kind, dlogits, name, hyper, views, seeds, regs, coefs)
    _nclip.attach(native, model)  # the optimizer's clipping, the constraints
    _nloss.attach(native, model, loss_kind)  # Huber's delta
    return (native, seeds, dropouts, (coefs, [r for _, _, r in items])), out


# Regularizer's penalty and gradient, the two methods the plan computes
_REG_METHODS = (_regularizers.Regularizer.__call__, _regularizers.Regularizer.add_gradient)


def _native_reg(r):
    """Whether the plan computes r: an L1, L2, L1L2 or BatchMeanL2 whose penalty and gradient
    are Regularizer's own (not replaced on a class or on r: a spy, a patch)."""
    return type(r) in _REGS and (type(r).__call__, type(r).add_gradient) == _REG_METHODS \
        and "add_gradient" not in vars(r)


def _regs_key(model):
    """The regularized variables the plan adds penalties for: another regularizer, variable
    or trainable flag rebuilds it (their coefficients are read at every call: _reg_coefs)."""
    return tuple((id(l), v, id(r), _native_reg(r), bool(getattr(l, "trainable", True))) for l, v, r in _reg_list(model))


def _reg_coefs(regs):
    """Each regularizer's (l1, l2) now (BatchMeanL2's l2 follows its batch_size) into the plan's
    coefficients; False (nothing written) when one is not a float: the Python step computes then."""
    coefs, rs = regs
    vals = [(r.l1, r.l2) for r in rs]
    if any(type(a) is not float or type(b) is not float for a, b in vals):
        return False
    if vals:
        coefs[:] = vals
    return True


def _layers_key(model):
    """What the plan copied from the layers: a changed activation, dropout rate or dtype
    policy (and so bfloat16 storage) rebuilds it."""
    return tuple((id(l), repr(getattr(l, "activation", None)), getattr(l, "rate", None),
                  getattr(l, "seed", None), getattr(l, "momentum", None), getattr(l, "epsilon", None),
                  getattr(getattr(l, "_dtype_policy", None), "name", None),
                  tuple(id(r) for r in getattr(l, "_bf16_readers", ())))
                 for l in model.layers)


def _key(model, m, version):
    opt = model.optimizer
    return (m, version, id(model.arena.params), id(model.arena.grads), id(model.loss), _nclip.constraints_key(model),
            tuple(id(v) for v in opt.state.values()), _hyper_key(opt), _layers_key(model), _regs_key(model),
            _nact.key(model), _nloss.key(model))


def _ready(model, m, xb, yb, loss_on_logits, last_logits):
    """(step, labels as the plan takes them, ranges) with the plan for batches of m rows
    like (xb, yb) built or reused, or None: the Python step must run them."""
    if xb.__class__ is not np.ndarray or yb.__class__ is not np.ndarray or not enabled():
        return None
    plan = _PLANS.get(model)
    ranges, _, first = model.arena.layout()
    key = _key(model, m, model.arena.version)
    if plan is None or plan[0] != key:
        plan = _PLANS[model] = (key, _make(model, m, first, ranges, yb, loss_on_logits, last_logits))
    step = plan[1]
    if step is None or m == 0:
        return None
    kind = _loss_kind(model, yb, loss_on_logits, last_logits)
    if kind is None or kind[0] != step[1] or xb.dtype != model.dtype or not xb.flags.c_contiguous:
        return None
    return step, kind[1], ranges


def _dropout_seeds(dropouts, count, out):
    """Dropout.forward's seeds of the next ``count`` calls of each Dropout layer into out
    (count x layers); nothing changes (_set_dropouts does, once the steps ran)."""
    for j, (layer, _) in enumerate(dropouts):
        for i in range(count):
            out[i, j] = (layer.seed + (layer._calls + i) * layer._MIX) & 0xFFFFFFFFFFFFFFFF


def _set_dropouts(dropouts, count):
    """Each Dropout layer as after ``count`` more training calls, its mask the plan's."""
    for layer, mask in dropouts:
        layer._calls += count
        layer._active, layer._mask = True, mask


def try_step(model, xb, yb, loss_on_logits, last_logits, sample_weight, lr=None):
    """(loss, penalty, output) after one native step (at learning rate lr: the optimizer's
    current one when None), or None: run the Python step instead (nothing has been changed then)."""
    w = _step_weights(sample_weight, model.dtype, xb.shape[0])  # as weighted_value_and_grad converts them
    ready = None if w is False else _ready(model, xb.shape[0], xb, yb, loss_on_logits, last_logits)
    if ready is None or (w is not None and not _weighted_ok(ready[0][1])):
        return None
    step, labels, ranges = ready
    (native, seeds, dropouts, regs), out = step[0], step[2]
    if not _reg_coefs(regs):
        return None
    _dropout_seeds(dropouts, 1, seeds.reshape(1, -1))
    _set_dropouts(dropouts, 1)
    opt = model.optimizer
    x2 = xb.reshape(xb.shape[0], -1)  # a leading Flatten's output (xb itself when 2-D)
    if ranges:
        _native_optim.sync_in(native, opt)
        loss = native.run(x2, labels, opt.current_learning_rate() if lr is None else lr, opt.iterations + 1, w)
        opt.iterations += 1
        _native_optim.sync_out(native, opt)
    else:
        loss = native.run(x2, labels, 0.0, 0, w)
    _nact.after(model, native)
    _first_layer(model)._x = x2
    return loss, native.penalty, out


def _first_layer(model):
    """The first layer of the chain that is not a (leading) Flatten: the one whose input
    (its ``_x``, a view of the batch) the Python step keeps."""
    return next(l for l in model._chain if type(l) is not _layers.Flatten)


# Rows of data per native call of epoch_steps: 64 steps at batch 32 (tens of milliseconds,
# the longest a Ctrl-C, a progress bar or stop_training waits), 4 at batch 512.
CHUNK_ROWS = 2048


def epoch_steps(model, batches, modes, outputs=False):
    """``run(order, guard)``: the full batches of an epoch of a ``_batches.EpochIterator``
    whose rows come in ``order``, ``CHUNK_ROWS`` rows per core call (``NativeStep.run_batches``:
    the batches, their sample weights too, gathered in the core; each call inside
    ``guard.begin()`` / ``guard.end()``), a generator of (batches done, [loss of each step],
    [penalty of each step (the regularizers'; 0.0 without)], each step's output (k x batch x
    width: a buffer the next call overwrites) or None without ``outputs``) after each call:
    the same steps, in the same order, with the same results as ``trainer.train_step`` batch
    by batch. None (nothing changed) when the native step cannot run them."""
    x, y, m = batches.x, batches.y, batches.batch_size
    full = batches.num_samples // m
    weights = _step_weights(batches.sample_weight, model.dtype, batches.num_samples)
    if weights is False or y is None or full == 0 or not enabled() or x.__class__ is not np.ndarray \
            or x.ndim < 2 or not x.flags.c_contiguous or not x.flags.aligned:
        return None
    ready = _ready(model, m, x[:m], y[:m], *modes)
    if ready is None or not _reg_coefs(ready[0][0][3]) or (weights is not None and not _weighted_ok(ready[0][1])):
        return None
    cached = getattr(batches, "_native_data", None)  # made once per iterator
    if cached is None or cached.kind != ready[0][1] or cached.smoothing != _smoothing(model.loss):
        kind = _loss_kind(model, y, *modes)
        if kind is None or kind[0] != ready[0][1]:
            return None
        labels = kind[1]  # y itself when it is already as the plan takes it
        xbuf = (batches._xbufs or {}).get(m)  # the iterator's buffers when shuffled, else scratch below
        ybuf = (batches._ybufs or {}).get(m)
        if ybuf is None or ybuf.dtype != labels.dtype:
            ybuf = _scratch(model, "ybuf", (m,) + labels.shape[1:], labels.dtype)
        width = int(np.prod(x.shape[1:]))  # a leading Flatten's: the batches as (m, width) views
        xbuf = _scratch(model, "xbuf", (m, width), model.dtype) if xbuf is None else xbuf.reshape(m, width)
        wbuf = None if weights is None else _scratch(model, "wbuf", (m,), model.dtype)
        cached = batches._native_data = _EpochData(kind[0], labels, xbuf, ybuf, weights, wbuf, _smoothing(model.loss))
    outs = None
    if outputs:
        width = ready[0][2].shape[1]
        per_call = _steps_per_call(m, width * np.dtype(model.dtype).itemsize)
        outs = _scratch(model, "outs", (min(per_call, full), m, width), model.dtype)
    x2 = x.reshape(x.shape[0], -1)
    return lambda order, guard, execution=0: _chunks(model, ready, cached, x2, order, full, guard, outs, execution)


# The most bytes of outputs one call keeps for the metrics (a wide output takes fewer steps).
OUTPUT_BYTES = 4 << 20


def _steps_per_call(m, row_bytes):
    """Steps per core call at batch size m, each step's output rows row_bytes wide (0: none kept)."""
    k = max(1, CHUNK_ROWS // m)
    return k if not row_bytes else max(1, min(k, OUTPUT_BYTES // (m * row_bytes)))


def _chunks(model, ready, cached, x, order, full, guard, outs, execution=0):
    """The generator of epoch_steps's run; execution > 0: no call crosses a multiple of that
    many steps (compile's steps_per_execution: the batch hooks run between calls)."""
    step, _, ranges = ready
    (native, seeds, dropouts, regs), m = step[0], cached.xbuf.shape[0]
    opt, done = model.optimizer, 0
    per_call = _steps_per_call(m, 0 if outs is None else outs[0, 0].nbytes)
    while done < full:
        k = min(per_call, full - done, execution - done % execution if execution else full)
        guard.begin()  # the rates, seeds and counters read and written inside, as by one step
        try:
            lrs = np.asarray(opt.learning_rates(k) if ranges else [0.0] * k, dtype=np.float64)
            bad = np.flatnonzero(~(np.isfinite(lrs) & (lrs >= 0)))
            if bad.size:  # the steps before a rate the step refuses; then that one alone (it raises)
                k = max(1, int(bad[0]))
                lrs = lrs[:k]
            seed_rows, losses, penalties = np.empty((k, len(dropouts)), np.uint64), np.empty(k), np.empty(k)
            _dropout_seeds(dropouts, k, seed_rows)
            if not _reg_coefs(regs):  # checked by epoch_steps: only another thread changes them
                raise TypeError("regularizer: expected float l1 and l2, got "
                                + ", ".join(f"{type(r).__name__}(l1={r.l1!r}, l2={r.l2!r})" for r in regs[1]))
            _native_optim.sync_in(native, opt)
            native.run_batches(x, cached.labels, order[done * m:(done + k) * m], lrs,
                               opt.iterations + 1 if ranges else 0, seed_rows, losses, cached.xbuf, cached.ybuf,
                               None if outs is None else outs[:k], penalties, cached.weights, cached.wbuf)
            _set_dropouts(dropouts, k)
            _nact.after(model, native)
            if ranges:
                opt.iterations += k
                _native_optim.sync_out(native, opt)
            _first_layer(model)._x = cached.xbuf
        finally:
            guard.end()
        done += k
        yield done, losses.tolist(), penalties.tolist(), None if outs is None else outs[:k]


def _make(model, m, first, ranges, yb, loss_on_logits, last_logits):
    """(NativeStep, loss kind, output buffer) or None when this model's step is not supported."""
    chain = _supported_model(model)
    opt_spec = _optimizer_spec(model.optimizer) if chain is not None else None
    kind = _loss_kind(model, yb, loss_on_logits, last_logits) if opt_spec is not None else None
    if kind is None or m == 0:
        return None
    opt = model.optimizer
    if ranges and not set(opt.slots).union(opt._switched_on_slots()) <= set(opt.state):
        return None  # state not built, or a slot switched on after build (Optimizer.apply adds it)
    built = _build(model, chain, m, first, ranges, kind[0], last_logits, opt_spec)
    return None if built is None else (built[0], kind[0], built[1])
