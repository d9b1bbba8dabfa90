"""The functional graph below ``Model``: tracing ``Input``/layer calls into nodes, building
their shapes, forward and backward over any DAG, the graph's config and its summary rows.

Values are numbered: the model's inputs are values ``0 .. I-1``, node ``k``'s output is
value ``I + k``; a :class:`Node` names the values it takes (``inbound``). Nodes are kept in
topological order, so forward runs them in order and backward in reverse, each gradient
sent to the node's inbound values (summed where a value feeds several nodes).

A layer used by several nodes (a shared layer) keeps one set of variables, one arena slot:
its first node runs the layer itself, each later node a per-call copy of it
(:class:`_Call`: its own buffers and activations, a gradient scratch) whose gradients are
added into the layer's slot after the backward pass.

>>> import fastnn
>>> from fastnn.layers import Input, Dense, Add
>>> x = Input(4); h = Dense(4)(x); y = Add()([x, h])
>>> nodes, outs = trace([x], [y])
>>> [(n.layer.name.split("_")[0], n.inbound) for n in nodes], outs
([('dense', (0,)), ('add', (0, 1))], [2])
"""
from __future__ import annotations

import copy

import numpy as np

from . import layers as _layers


class Node:
    """One layer call: ``layer`` applied to the values ``inbound`` (a tuple of value indices)."""

    __slots__ = ("layer", "inbound", "call")

    def __init__(self, layer, inbound):
        self.layer, self.inbound = layer, tuple(inbound)
        self.call = None  # a _Call when this node is a later use of a shared layer

    @property
    def merge(self):
        return getattr(self.layer, "_multi_input", False)

    def __repr__(self):  # noqa: D105
        return f"<Node {self.layer.name} <- {self.inbound}>"


class _Call:
    """The per-call state of a shared layer's later use: buffers and a gradient scratch."""

    __slots__ = ("bufs", "grads", "obj", "ran")

    def __init__(self, layer):
        self.bufs = {}
        self.grads = {s.name: np.zeros(s.shape, dtype=layer.dtype) for s in layer.specs if s.trainable}
        self.obj, self.ran = layer, False

    def bind(self, layer):
        """A shallow copy of the layer (same variables) with this call's buffers and scratch."""
        obj = copy.copy(layer)
        obj._bufs, obj.grads = self.bufs, self.grads
        self.obj = obj
        return obj

    def sync(self, layer):
        """Counters the call advanced (dropout's step count) go back to the layer."""
        d = layer.__dict__
        for k, v in self.obj.__dict__.items():
            if type(v) is int and k in d and d[k] != v:
                d[k] = v


def chain_nodes(layers):
    """Nodes of a chain: layer k takes value k (the input, then layer k-1's output)."""
    return [Node(layer, (k,)) for k, layer in enumerate(layers)]


def trace(inputs, outputs):
    """(nodes, outs): the nodes computing ``outputs`` from ``inputs`` (lists of SymbolicTensors)
    in topological order, and the value index of each output."""
    names = [t.layer.name for t in inputs]
    if len(set(names)) != len(names):
        raise ValueError(f"inputs: names must differ (fit takes a dict keyed by them), got {names}")
    value = {id(t): i for i, t in enumerate(inputs)}
    order = []
    for root in outputs:
        stack = [root]
        while stack:
            t = stack[-1]
            if id(t) in value:
                stack.pop()
                continue
            if not t.parents:
                raise ValueError(f"outputs: not computed from these inputs: they depend on Input "
                                 f"{t.layer.name!r}, which is not in inputs "
                                 f"({', '.join(repr(i.layer.name) for i in inputs)})")
            pending = [p for p in t.parents if id(p) not in value]
            if pending:
                stack.extend(reversed(pending))
                continue
            value[id(t)] = len(inputs) + len(order)
            order.append(t)
            stack.pop()
    nodes = [Node(t.layer, [value[id(p)] for p in t.parents]) for t in order]
    return nodes, [value[id(t)] for t in outputs]


def build_shapes(nodes, in_shapes, dtype, outs=()):
    """Build every node's layer for its inbound shapes, choose the values stored in bfloat16
    (mixed precision: layers._mixed.plan_bf16_outputs); returns the shape of every value."""
    shapes = [tuple(s) for s in in_shapes]
    for node in nodes:
        ins = [shapes[i] for i in node.inbound]
        node.layer.build(ins if node.merge else ins[0], dtype)
        shapes.append(tuple(node.layer.output_shape))
    _layers._mixed.plan_bf16_outputs(nodes, len(in_shapes), outs)
    return shapes


def link_shared(nodes):
    """Give each later use of a shared layer its per-call state; returns those nodes."""
    seen, shared = set(), []
    for node in nodes:
        node.call = None
        if id(node.layer) in seen:
            node.call = _Call(node.layer)
            shared.append(node)
        seen.add(id(node.layer))
    return shared


def unique_layers(nodes):
    out, seen = [], set()
    for n in nodes:
        if id(n.layer) not in seen:
            seen.add(id(n.layer))
            out.append(n.layer)
    return out


def bypass(nodes, n_in, outs, keep):
    """The nodes without those whose layer is not in ``keep`` (single-input layers only,
    such as the dropout layers gradient checking removes): their consumers read their input."""
    keep_ids = {id(layer) for layer in keep}
    alias = list(range(n_in))
    new = []
    for node in nodes:
        ins = tuple(alias[i] for i in node.inbound)
        if id(node.layer) in keep_ids:
            alias.append(n_in + len(new))
            new.append(Node(node.layer, ins))
        elif node.merge:
            raise ValueError(f"layers: the merge layer {node.layer.name!r} cannot be removed from a graph")
        else:
            alias.append(ins[0])
    return new, [alias[v] for v in outs]


def is_chain(nodes, n_in, outs):
    """True for one input, one output, each node taking the previous one's output, no shared layer."""
    return (n_in == 1 and outs == [len(nodes)] and all(n.inbound == (k,) for k, n in enumerate(nodes))
            and len(unique_layers(nodes)) == len(nodes))


# ------------------------------------------------------------------ compute
def forward(nodes, n_in, outs, xs, training, logit_nodes=(), capture=None):
    """The output values for the input arrays ``xs``; nodes in ``logit_nodes`` emit logits."""
    vals = list(xs)
    for k, node in enumerate(nodes):
        layer, call = node.layer, node.call
        obj = layer if call is None else call.bind(layer)
        ins = [vals[i] for i in node.inbound] if node.merge else vals[node.inbound[0]]
        y = obj.forward(ins, training, True) if k in logit_nodes else obj.forward(ins, training)
        if call is not None:
            call.sync(layer)
        if capture is not None:
            capture[_capture_key(capture, layer.name)] = _layers._mixed.as_float(y)
        vals.append(y)
    return [vals[v] for v in outs]


def _capture_key(capture, name):
    if name not in capture:
        return name
    k = 1
    while f"{name}[{k}]" in capture:
        k += 1
    return f"{name}[{k}]"


def _learns(layer):
    return layer.trainable and any(s.trainable for s in layer.specs)


def backward(nodes, n_in, outs, ds, shared, acc_bufs):
    """Backward from the output gradients ``ds`` in reverse topological order. A node runs
    when a parameter at or above it learns; gradients reaching a value from several nodes
    are summed into graph-owned buffers (``acc_bufs``), then the later uses of shared layers
    add their gradients into the layer's arena slot."""
    wants = []  # wants[k]: node k or a node above it has parameters that learn
    for node in nodes:
        wants.append(_learns(node.layer) or any(v >= n_in and wants[v - n_in] for v in node.inbound))
    dvals = [None] * (n_in + len(nodes))
    for v, d in zip(outs, ds):
        _accumulate(dvals, v, d, acc_bufs)
    for k in range(len(nodes) - 1, -1, -1):
        dy = dvals[n_in + k]
        if dy is None or not wants[k]:
            continue
        node = nodes[k]
        need_dx = any(v >= n_in and wants[v - n_in] for v in node.inbound)
        obj = node.layer if node.call is None else node.call.obj
        dx = obj.backward(dy, need_dx)
        if node.call is not None:
            node.call.ran = True
        if not need_dx or dx is None:
            continue
        for v, g in zip(node.inbound, dx if node.merge else (dx,)):
            if v >= n_in and wants[v - n_in]:
                _accumulate(dvals, v, g, acc_bufs)
    for node in shared:
        call = node.call
        if call.ran and node.layer.trainable:
            for name, g in call.grads.items():
                node.layer.grads[name] += g
        call.ran = False


def _accumulate(dvals, v, g, acc_bufs):
    cur = dvals[v]
    if cur is None:
        dvals[v] = g
        return
    key = (v, g.shape, g.dtype)
    buf = acc_bufs.get(key)
    if buf is None:
        buf = acc_bufs[key] = np.empty(g.shape, dtype=g.dtype)
    np.add(cur, g, out=buf)
    dvals[v] = buf


# ------------------------------------------------------------------ config
def graph_config(nodes, layers, inputs, outs):
    index = {id(layer): i for i, layer in enumerate(layers)}
    return {"inputs": [{"name": i.name, "shape": list(i.shape)} for i in inputs],
            "nodes": [[index[id(n.layer)], list(n.inbound)] for n in nodes],
            "outputs": list(outs)}


def graph_from_config(graph, layers):
    """(input tensors, output tensors) rebuilt from a graph config and its layers."""
    tensors = [_layers.Input(tuple(i["shape"]), name=i["name"]) for i in graph["inputs"]]
    inputs = list(tensors)
    for li, inbound in graph["nodes"]:
        used = len({id(t.layer) for t in tensors[len(inputs):]})
        if not inbound or any(not 0 <= int(v) < len(tensors) for v in inbound) or not 0 <= int(li) <= used \
                or int(li) >= len(layers):
            raise ValueError(f"graph: node {len(tensors) - len(inputs)} refers to a value or layer that "
                             f"does not exist (layer {li}, inbound {inbound}; layers are listed in the "
                             f"order of their first node)")
        layer = layers[int(li)]
        ts = [tensors[int(v)] for v in inbound]
        tensors.append(layer(ts) if getattr(layer, "_multi_input", False) else layer(ts[0]))
    outputs = []
    for v in graph["outputs"]:
        if not len(inputs) <= int(v) < len(tensors):
            raise ValueError(f"graph: output value {v} is not the output of a node")
        outputs.append(tensors[int(v)])
    return inputs, outputs


# ------------------------------------------------------------------ summary
def summary_rows(nodes, inputs, shapes):
    """Rows (layer (type), output shape, params, [connected to...]) as Keras prints a graph;
    ``inputs`` are (name, shape) pairs."""
    n_in = len(inputs)
    producer, calls = {}, {}
    for i, (name, _) in enumerate(inputs):
        producer[i] = f"{name}[0][0]"
    for k, node in enumerate(nodes):
        j = calls.get(id(node.layer), 0)
        calls[id(node.layer)] = j + 1
        producer[n_in + k] = f"{node.layer.name}[{j}][0]"
    rows = [(f"{name} (InputLayer)", str((None,) + tuple(shape)), "0", ["-"]) for name, shape in inputs]
    by_layer = {}
    for k, node in enumerate(nodes):
        links = [producer[v] for v in node.inbound]
        if id(node.layer) in by_layer:
            by_layer[id(node.layer)][3].extend(links)
            continue
        layer = node.layer
        row = (f"{layer.name} ({type(layer).__name__})", str((None,) + shapes[n_in + k]),
               f"{layer.count_params():,}", links)
        by_layer[id(layer)] = row
        rows.append(row)
    return rows


def policy_line(layers, dtype):
    """The summary's ``Dtype policy: ...`` line: the layers' policies (the model's dtype if none)."""
    return "Dtype policy: " + ", ".join(sorted({l.dtype_policy.name for l in layers}) or [dtype.name])


def format_summary(name, rows, totals):
    w0 = max(28, *(len(r[0]) + 2 for r in rows))
    w1 = max(20, *(len(r[1]) + 2 for r in rows))
    w2 = max(10, *(len(r[2]) for r in rows))
    w3 = max(14, *(len(c) + 2 for r in rows for c in r[3]))
    width = w0 + w1 + w2 + 2 + w3
    out = [f'Model: "{name}"', "_" * width,
           "Layer (type)".ljust(w0) + "Output Shape".ljust(w1) + "Param #".rjust(w2) + "  " + "Connected to",
           "=" * width]
    for i, r in enumerate(rows):
        out.append(r[0].ljust(w0) + r[1].ljust(w1) + r[2].rjust(w2) + "  " + r[3][0])
        out += [" " * (w0 + w1 + w2 + 2) + c for c in r[3][1:]]
        out.append("=" * width if i == len(rows) - 1 else "_" * width)
    t, nt = totals
    return out + [f"Total params: {t + nt:,}", f"Trainable params: {t:,}", f"Non-trainable params: {nt:,}",
                  "_" * width]


def format_chain_summary(name, rows, totals):
    """The summary of a chain: rows (layer (type), output shape, params), no connections."""
    w0 = max(28, *(len(r[0]) + 2 for r in rows))
    w1 = max(20, *(len(r[1]) + 2 for r in rows))
    w2 = max(10, *(len(r[2]) for r in rows))
    line = "=" * (w0 + w1 + w2)
    out = [f'Model: "{name}"', "_" * (w0 + w1 + w2),
           "Layer (type)".ljust(w0) + "Output Shape".ljust(w1) + "Param #".rjust(w2), line]
    for r in rows:
        out.append(r[0].ljust(w0) + r[1].ljust(w1) + r[2].rjust(w2))
    t, nt = totals
    return out + [line, f"Total params: {t + nt:,}", f"Trainable params: {t:,}", f"Non-trainable params: {nt:,}",
                  "_" * (w0 + w1 + w2)]
