"""The parameter arena: every trainable parameter of a model in one flat buffer, their
gradients in another; layers hold NumPy views into both (``layer.vars``, ``layer.grads``).

The arena owns the layout (``entries``: (layer, spec, offset) in model order, and
``offsets``), the trainable ranges the optimizer updates, and a ``version`` that changes
whenever the layout or the set of trainable layers changes. Trainable flags are compared
at every ``layout()`` call (one tuple of booleans per step), so a change of
``layer.trainable`` is seen at the next step with no global counter; whoever caches
something derived from the layout keys it on ``version``.

>>> import numpy as np, fastnn
>>> from fastnn.layers import Dense
>>> m = fastnn.Sequential([Dense(3, input_dim=2), Dense(1)])
>>> a = m.arena
>>> a.params.size, np.shares_memory(m.layers[0].vars["kernel"], a.params)
(13, True)
>>> ranges, _, first = a.layout(); ranges, first
([(0, 13)], 0)
>>> m.layers[0].trainable = False
>>> ranges, _, first = a.layout(); ranges, first
([(9, 13)], 1)
"""
from __future__ import annotations

import numpy as np


class ParameterArena:
    """Flat params/grads of ``layers`` (in order) in ``dtype``; see the module docstring."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.params = np.empty(0, dtype=self.dtype)
        self.grads = np.zeros(0, dtype=self.dtype)
        self.layers = []
        self.entries = []  # (layer, VarSpec, offset) of every trainable-kind variable
        self.offsets = {}  # (id(layer), variable name) -> offset
        self.version = 0
        self._key = None
        self._layout = None

    @property
    def size(self):
        return self.params.size

    def place(self, layers, dtype=None):
        """Lay out every parameter of ``layers`` (built) in new buffers of ``dtype`` (default:
        the arena's), keeping the values a layer already holds; layers get views. Returns the remap [(old slice, new slice)] of
        the parameters that were in this arena before (for the optimizer's slots)."""
        if dtype is not None:
            self.dtype = np.dtype(dtype)
        old_params, old_offsets = self.params, self.offsets
        entries, off = [], 0
        for layer in layers:
            for s in layer.specs:
                if s.trainable:
                    entries.append((layer, s, off))
                    off += s.size
        params = np.empty(off, dtype=self.dtype)
        grads = np.zeros(off, dtype=self.dtype)
        remap, offsets = [], {}
        for layer, s, o in entries:
            view = params[o:o + s.size].reshape(s.shape)
            old = layer.vars.get(s.name)
            if old is not None and old.shape == s.shape:
                view[...] = old
                key = (id(layer), s.name)
                if layer._arena is old_params and old_params.size and key in old_offsets:
                    a = old_offsets[key]
                    remap.append((slice(a, a + s.size), slice(o, o + s.size)))
            else:
                view[...] = s.initializer(s.shape, self.dtype)
            layer.vars[s.name] = view
            layer.grads[s.name] = grads[o:o + s.size].reshape(s.shape)
            offsets[(id(layer), s.name)] = o
        for layer in layers:
            self._place_state(layer)
            layer._arena = params
        self.params, self.grads, self.entries, self.offsets = params, grads, entries, offsets
        self.layers = list(layers)
        self._key = None
        self.version += 1
        return remap

    def _place_state(self, layer):
        """Non-trainable state (moving statistics) lives outside the arena, in the arena's dtype."""
        for s in layer.specs:
            if not s.trainable:
                old = layer.vars.get(s.name)
                if old is None or old.shape != s.shape:
                    layer.vars[s.name] = s.initializer(s.shape, self.dtype)
                elif old.dtype != self.dtype:
                    layer.vars[s.name] = old.astype(self.dtype)

    def owns(self, layers, dtype):
        """True when every layer still holds views into this arena, in ``dtype``."""
        return all(layer._arena is self.params and layer.dtype == dtype for layer in layers) \
            and np.dtype(dtype) == self.dtype

    def layout(self):
        """(ranges, variables, first): the contiguous trainable ranges, each trainable
        variable's (start, stop), and the index of the first layer with trainable parameters
        (backward stops there). Recomputed, and ``version`` bumped, when a trainable flag
        changed since the last call."""
        key = [layer._trainable for layer in self.layers]
        if key != self._key:
            self._layout = self._compute_layout()
            self._key = key
            self.version += 1
        return self._layout

    def _compute_layout(self):
        ranges, variables = [], []
        for layer, s, o in self.entries:
            if layer.trainable:
                variables.append((o, o + s.size))
                if ranges and ranges[-1][1] == o:
                    ranges[-1] = (ranges[-1][0], o + s.size)
                else:
                    ranges.append((o, o + s.size))
        first = len(self.layers)
        for i, layer in enumerate(self.layers):
            if layer.trainable and any(s.trainable for s in layer.specs):
                first = i
                break
        return ranges, variables, first

    def trainable_count(self):
        """Number of parameters of trainable layers."""
        return sum(s.size for layer in self.layers for s in layer.specs if s.trainable and layer.trainable)
