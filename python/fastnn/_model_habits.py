"""Keras 3's habits on models, bound into ``fastnn.graph.Model`` / ``Sequential``:
``model.trainable`` (setting it sets every layer's flag, as Keras), ``get_layer`` and
``Sequential.pop``, with Keras's answers and errors."""
from __future__ import annotations

import numbers


class Trainable:
    """``model.trainable``: the model's own flag (True at first); setting it sets the flag of
    every layer, as Keras 3 does (``base.trainable = False`` freezes a whole model; True unfreezes
    all its layers). Seen at the next training step."""

    def __get__(self, model, owner=None):
        if model is None:
            return self
        return model.__dict__.get("_model_trainable", True)

    def __set__(self, model, value):
        value = bool(value)
        for layer in model.layers:
            layer.trainable = value
        model.__dict__["_model_trainable"] = value


def get_layer(self, name=None, index=None):
    """The layer called ``name`` (a functional model's InputLayer too), or ``model.layers[index]``
    (Keras 3: ``model.get_layer``; a functional model's ``layers`` has no InputLayer in fastnn,
    so its indices are one less than Keras's)."""
    if index is not None:
        if name is not None:
            raise ValueError(f"get_layer: give name or index, not both (got name={name!r}, index={index!r})")
        n = len(self.layers)
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        if not -n <= index < n:
            raise ValueError(f"index: the model has {n} layers, got index {index}")
        return self.layers[index]
    if name is None:
        raise ValueError("get_layer: give a layer name or index, got neither")
    for layer in self.layers:
        if layer.name == name:
            return layer
    for layer in getattr(self, "_graph_inputs", ()):  # a functional model's InputLayer, by name as Keras
        if layer.name == name:
            return layer
    raise ValueError(f"name: no layer {name!r}; layers: {', '.join(l.name for l in self.layers)}")


def pop(self, rebuild=True):
    """Removes and returns the last layer (Keras 3's ``Sequential.pop``); with ``rebuild`` the
    model is built again on its input shape (the other layers keep their weights)."""
    if not self.layers:
        raise TypeError("pop: there are no layers in the model")
    layer = self.layers.pop()
    self.built = False
    if rebuild and self._input_shape is not None and self.layers:
        self.build()
    return layer


def add(self, layer, rebuild=True):
    """Appends ``layer`` (Keras 3's ``Sequential.add``); with ``rebuild`` a model that knows its
    input shape is built again at once, the other layers keeping their weights (``get_weights``
    holds the new layer's, as Keras). A layer that cannot follow leaves the model as it was."""
    count, was_built, input_shape = len(self.layers), self.built, self._input_shape
    self._append(layer)
    if rebuild and self._input_shape is not None and len(self.layers) > count:
        try:
            self.build()
        except Exception:
            self._input_shape = input_shape  # the shape the refused layer declared goes with it
            pop(self, rebuild=was_built)
            raise


def check_new_name(model, layer):
    """Sequential.add: layer names are unique in the model, as Keras 3 requires (the same layer
    added twice is refused by it too: one layer's buffers cannot serve two places in a chain)."""
    if any(l is layer for l in model.layers):
        raise ValueError(f"layer: {layer.name!r} is already in this model; a Sequential model takes each "
                         f"layer once (make a new layer, or share it in a functional Model)")
    if any(l.name == layer.name for l in model.layers):
        raise ValueError(f"layer: all layers of a Sequential model need unique names; {layer.name!r} is "
                         f"already the name of a layer in this model (give the new layer another name=)")


def count_params(self):
    """The number of values in the model's variables; a ValueError before the model is built
    (Keras 3; 0 would be a wrong count)."""
    if not self.built:
        raise ValueError("count_params: the model is not built yet (give an input shape, or fit it first)")
    return sum(layer.count_params() for layer in self.layers)


def weights(model):
    """``model.weights``: every layer's variables, layer by layer (Keras order)."""
    return [w for layer in model.layers for w in layer.weights]


def trainable_weights(model):
    return [w for layer in model.layers for w in layer.trainable_weights]


def non_trainable_weights(model):
    tw = {id(w) for w in trainable_weights(model)}
    return [w for w in weights(model) if id(w) not in tw]
