"""Loss vs output layer: a probability loss must follow an output that gives probabilities.

A model-level fact, checked once by ``Model.compile`` (and again by the trainer when the
model is built at the first fit, when the output width becomes known), before any state
changes. Cross-entropy without ``from_logits`` applies -log to the model's outputs, so:

- ``categorical_crossentropy`` / ``sparse_categorical_crossentropy`` need a softmax output
  of at least 2 units (rows summing to 1). A sigmoid output with several units gives
  independent per-unit probabilities (multi-label): that is ``binary_crossentropy``'s job.
- ``binary_crossentropy`` needs outputs in [0, 1] that are per-unit probabilities:
  sigmoid (one unit, or several for multi-label, as Keras users do) or hard_sigmoid. A
  softmax of several units couples the units (use categorical cross-entropy, or sigmoid).
- softmax over one unit is always 1.0: refused with every cross-entropy.
- ``from_logits=True`` expects raw scores: an output layer that already applies softmax or
  sigmoid would apply it twice, so it is refused; any other activation is taken as logits.

What is judged is the last layer of the model, looking through ``Flatten`` / ``Reshape``
/ ``Identity``. fastnn's own layers that cannot produce probabilities (a Dense or
Activation with any other activation, BatchNormalization, PReLU, Maxout, Dropout, noise
layers) are refused. Layers this module does not know (user subclasses, merge layers,
whose output may legitimately be an average of softmaxes) are not judged.
"""
from __future__ import annotations

from . import layers as _layers

_PROBABILITY_LOSSES = ("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy")
_SQUASHING = ("softmax", "sigmoid", "hard_sigmoid")
_LOOK_THROUGH = ("Flatten", "Reshape", "Identity")
_UNBOUNDED = ("BatchNormalization", "LayerNormalization", "PReLU", "Maxout", "Dropout", "AlphaDropout",
              "GaussianNoise", "Rescaling", "Normalization", "RandomFlip", "RandomTranslation")


def _output_layer(model):
    """The layer whose values are the model's output, looking through reshapes (or None)."""
    nodes = list(getattr(model, "_nodes", None) or [])
    if nodes:  # built: follow each reshape to the node computing its input (value v is node v-n_in's)
        n_in, outs = getattr(model, "_n_in", 1), getattr(model, "_outs", None)
        k = outs[0] - n_in if outs else len(nodes) - 1  # the (first) output's node
        while k >= 0 and type(nodes[k].layer).__name__ in _LOOK_THROUGH:
            k = nodes[k].inbound[0] - n_in
        return nodes[k].layer if k >= 0 else None
    layers = list(model.layers)  # not built yet: a stack, each layer feeding the next
    while layers and type(layers[-1]).__name__ in _LOOK_THROUGH:
        layers.pop()
    return layers[-1] if layers else None


def _output_kind(layer):
    """(activation name, or "unbounded" for a known layer without probabilities, or None)."""
    if layer is None:
        return None
    act = getattr(layer, "activation", None)
    if isinstance(layer, (_layers.Dense, _layers.Activation)) and act is not None:
        return act.name
    name = type(layer).__name__
    if name == "Softmax":
        return "softmax"
    if name in _UNBOUNDED:
        return "unbounded"
    return None


def _width(layer):
    if getattr(layer, "output_shape", None):
        return int(layer.output_shape[-1])
    units = getattr(layer, "units", None)
    return int(units) if isinstance(units, int) else None


def check_loss_output(model, loss):
    """Raise a ValueError when ``loss`` cannot be right after the model's output layer."""
    if loss is None or loss.name not in _PROBABILITY_LOSSES:
        return
    layer = _output_layer(model)
    kind = _output_kind(layer)
    if kind is None:
        return
    width = _width(layer)
    where = f"the output layer {layer.name!r} ({type(layer).__name__}"
    where += f", activation={kind!r})" if kind != "unbounded" else ")"
    if loss.from_logits:
        if kind in _SQUASHING:
            raise ValueError(f"loss: {loss.name} with from_logits=True expects raw scores (logits), but {where} "
                             f"already applies {kind}, which would then be applied twice; use "
                             f"from_logits=False with this output, or give the output layer no activation")
        return
    fix = (f'give the output layer activation="{"sigmoid" if loss.name == "binary_crossentropy" else "softmax"}"'
           f", or keep raw scores and compile with {type(loss).__name__}(from_logits=True)")
    if kind == "softmax" and width == 1:
        raise ValueError(f"loss: {where} has 1 unit: softmax over one unit is always 1.0, so {loss.name} "
                         f"cannot learn; for two classes use Dense(1, activation=\"sigmoid\") with "
                         f"binary_crossentropy, or Dense(2, activation=\"softmax\") with a categorical loss")
    if loss.name == "binary_crossentropy":
        if kind in ("sigmoid", "hard_sigmoid"):
            return
        if kind == "softmax":
            if width is None:
                return
            raise ValueError(f"loss: binary_crossentropy after {where} with {width} units: softmax couples "
                             f"the units (they sum to 1), binary cross-entropy treats each as independent; use "
                             f"categorical_crossentropy (or sparse_) with softmax, or activation=\"sigmoid\" "
                             f"for multi-label targets")
    else:
        if kind == "softmax":
            return
        if kind in ("sigmoid", "hard_sigmoid"):
            raise ValueError(f"loss: {loss.name} after {where}: sigmoid units are independent and do not sum "
                             f"to 1, so {loss.name} ignores the other classes; {fix} (or use "
                             f"binary_crossentropy for multi-label targets)")
    raise ValueError(f"loss: {loss.name} expects probabilities but {where} cannot produce them (-log of raw "
                     f"outputs trains to a meaningless loss); {fix}")
