"""The one check of a preprocessing transform's restored state (``set_state``, ``load``):
a state from a file may be damaged or hostile, and NumPy broadcasting would turn a mean of
the wrong shape into a silently wrong ``transform``. Every fitted array must be finite
float numbers of the shape its class's ``fit`` gives for ``input_shape_``; scales and
variances positive; the saved constructor arguments must pass the constructor."""
from __future__ import annotations

import math

import numpy as np


def _shapes(t):
    """{state key: expected shape} of transform ``t`` (fitted by its class's ``fit``)."""
    name = type(t).__name__
    if name == "ChannelMeanSubtraction":
        full = (None,) + t.input_shape_
        ax = t.channel_axis + len(full) if t.channel_axis < 0 else t.channel_axis
        if not 1 <= ax < len(full):
            raise ValueError(f"channel_axis: {t.channel_axis} is not a non-batch axis of inputs of shape "
                             f"(n, {', '.join(map(str, t.input_shape_))})")
        return {"mean_": (full[ax],), "scale_": (full[ax],)}
    d = math.prod(t.input_shape_)
    if name == "StandardScaler":
        shape = (d,) if t.per_feature else ()
        return {"mean_": shape, "scale_": shape}
    k = np.shape(t.components_)[0] if np.ndim(t.components_) == 2 else -1  # PCA, ZCA
    if not 1 <= k <= d:
        raise ValueError(f"components_: expected shape (k, {d}) with 1 <= k <= {d}, got {np.shape(t.components_)}")
    return {"mean_": (d,), "components_": (k, d), "explained_variance_": (k,), "explained_variance_ratio_": (k,)}


def check_state(t):
    """Raise ValueError (naming the entry) unless ``t``'s restored state is one ``fit`` could give."""
    shape = t.input_shape_
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape_: expected positive sizes, got {shape}")
    params = {k: getattr(t, k) for k in t._param_keys}
    try:
        type(t)(**params)
    except (TypeError, ValueError) as e:
        raise ValueError(f"state: the saved constructor arguments {params} are invalid ({e})") from None
    for k in t._state_keys:
        a = getattr(t, k)
        if a.dtype.kind != "f" or not np.isfinite(a).all():
            raise ValueError(f"{k}: expected finite float numbers, got {a.dtype} {a.shape}"
                             + ("" if a.dtype.kind != "f" else " holding NaN or infinity"))
    for k, want in _shapes(t).items():
        if np.shape(getattr(t, k)) != want:
            raise ValueError(f"{k}: expected shape {want} for inputs of shape (n, "
                             f"{', '.join(map(str, shape))}), got {np.shape(getattr(t, k))}")
    for k in ("scale_", "explained_variance_"):
        a = getattr(t, k, None)
        if a is not None and (a <= 0 if k == "scale_" else a < 0).any():
            raise ValueError(f"{k}: expected values {'> 0' if k == 'scale_' else '>= 0'}, got {a.min()}")
