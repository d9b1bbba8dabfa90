"""Keras 3's layer-config keys that fastnn's constructors do not take (``quantization_config``,
``lora_rank``, ``noise_shape``, BatchNormalization's ``renorm``, ...).

``Layer.from_config`` passes a config through :func:`accept` first: a key whose value fastnn
computes the same way (Keras's default, or an equivalent for fastnn's (batch, features)
layers) is dropped; any other value is refused with a ``ValueError`` naming the layer class,
the key, what fastnn computes and the value received, never silently ignored. A fastnn
``get_config`` writes the same keys with those values (:func:`written`), so that a config of
either library loads in the other.

>>> accept("Dropout", {"rate": 0.5, "noise_shape": None})
{'rate': 0.5}
"""
from __future__ import annotations

from numbers import Real

_ABSENT = object()  # a key Keras writes only when it is set: fastnn's get_config leaves it out


def _none(v):
    return v is None


def _false(v):
    return v is False or v is None


def _feature_axis(v):
    return v in (-1, 1) and not isinstance(v, bool) or (isinstance(v, (list, tuple)) and len(v) == 1
                                                        and _feature_axis(v[0]))


def _any_number(v):
    return isinstance(v, Real) and not isinstance(v, bool)


# class name -> {key: (accepts(value), what fastnn computes, the value get_config writes)}
_KEYS = {
    "Layer": {  # every layer (Keras writes it only when set)
        "activity_regularizer": (_none, "no activity regularization", _ABSENT),
    },
    "Dense": {
        "quantization_config": (_none, "None (fastnn does not quantize)", None),
        "lora_rank": (_none, "None (fastnn has no LoRA adapters)", _ABSENT),
        "lora_alpha": (_none, "None (fastnn has no LoRA adapters)", _ABSENT),
    },
    "Dropout": {
        "noise_shape": (_none, "None (one mask value per input value)", None),
    },
    "BatchNormalization": {
        "axis": (_feature_axis, "-1 (the features of (batch, features) inputs)", -1),
        "synchronized": (_false, "False (one device)", False),
        "renorm": (_false, "False (no batch renormalization)", False),
        "renorm_clipping": (_none, "None (no batch renormalization)", None),
        "renorm_momentum": (_any_number, "a number (unused without renorm)", 0.99),
    },
    "AlphaDropout": {
        "noise_shape": (_none, "None (one mask value per input value)", None),
    },
    "PReLU": {
        "alpha_constraint": (_none, "None (no constraint on alpha)", None),
        "shared_axes": (_none, "None (one alpha per input value)", None),
    },
    "RandomFlip": {
        "data_format": (lambda v: v in (None, "channels_last"), "'channels_last' images", "channels_last"),
    },
    "RandomTranslation": {
        "data_format": (lambda v: v in (None, "channels_last"), "'channels_last' images", "channels_last"),
    },
    "LayerNormalization": {
        "rms_scaling": (_false, "False (mean and variance, not RMS scaling)", False),
    },
    "Flatten": {
        "data_format": (lambda v: v in (None, "channels_last"), "'channels_last' (features in their order)",
                        "channels_last"),
    },
}


def _keys_of(cls_or_name):
    if isinstance(cls_or_name, str):
        return _KEYS.get(cls_or_name, {})
    keys = {}
    for c in reversed(cls_or_name.__mro__):  # a subclass keeps its base's keys
        keys.update(_KEYS.get(c.__name__, {}))
    return keys


def accept(cls_or_name, config):
    """``config`` without the Keras-only keys of the class, each checked (ValueError naming it)."""
    keys = _keys_of(cls_or_name)
    name = cls_or_name if isinstance(cls_or_name, str) else cls_or_name.__name__
    out = {}
    for k, v in config.items():
        if k in keys:
            ok, what, _ = keys[k]
            if not ok(v):
                raise ValueError(f"{name}.from_config: key {k!r}: fastnn computes {what}, cannot honour {v!r}")
        else:
            out[k] = v
    return out


def written(cls):
    """{key: value} that ``cls.get_config`` adds for Keras (Keras's defaults)."""
    return {k: w for k, (_, _, w) in _keys_of(cls).items() if w is not _ABSENT}


def input_args(shape, batch_size, dtype, sparse, ragged, batch_shape, input_tensor, optional):
    """(feature shape, dtype name or None) from Keras 3's ``InputLayer`` / ``Input`` arguments; what
    fastnn cannot honour is refused naming the argument."""
    for k, v in (("sparse", sparse), ("ragged", ragged), ("optional", optional)):
        if v not in (None, False):
            raise ValueError(f"InputLayer: {k}: fastnn takes dense inputs (False), got {v!r}")
    if input_tensor is not None:
        raise ValueError(f"InputLayer: input_tensor: expected None (fastnn has no backend tensors), "
                         f"got {type(input_tensor).__name__}")
    name = None if dtype is None else str(getattr(dtype, "name", dtype))
    if name not in (None, "float32", "float64"):
        raise ValueError(f"InputLayer: dtype: expected None, 'float32' or 'float64' (the model's dtype reads "
                         f"the inputs), got {dtype!r}")
    if batch_size is not None:
        raise ValueError(f"InputLayer: batch_size: expected None (fastnn models take any batch size), "
                         f"got {batch_size!r}")
    if batch_shape is None:
        if shape is None:
            raise ValueError("InputLayer: expected shape (or batch_shape), got neither")
        return shape, name
    if isinstance(batch_shape, (str, bytes)) or not hasattr(batch_shape, "__len__") or len(batch_shape) < 2 \
            or batch_shape[0] is not None:
        raise ValueError(f"InputLayer: batch_shape: expected (None, features...) (fastnn models take any "
                         f"batch size), got {batch_shape!r}")
    features = tuple(batch_shape[1:])
    if shape is not None and (tuple(shape) if hasattr(shape, "__len__") else (shape,)) != features:
        raise ValueError(f"InputLayer: shape {shape!r} and batch_shape {batch_shape!r} differ; give one")
    return features, name
