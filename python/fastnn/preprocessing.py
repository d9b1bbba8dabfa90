"""Preprocessing with training-set statistics: standardization, PCA (optionally
whitened), ZCA whitening, per-channel mean subtraction, one-hot labels; and
per-sample normalization, which uses each sample's own statistics only.

The pattern the course notes insist on: compute every statistic on the
training set only, then apply the *same* transform to dev and test data::

    scaler = StandardScaler().fit(x_train)
    x_train, x_dev = scaler.transform(x_train), scaler.transform(x_dev)

Each transform keeps its state as a dict of plain arrays (``get_state`` /
``set_state``, ``save`` / ``load`` to a ``.npz`` read with
``allow_pickle=False``), so it can be stored beside a model's weights.
"""
from __future__ import annotations

import copy
import os

import numpy as np

__all__ = ["StandardScaler", "PCA", "ZCA", "ChannelMeanSubtraction", "per_sample_normalize", "one_hot"]


def _as_2d(x, name: str = "x") -> tuple[np.ndarray, tuple]:
    """(n, ...) array-like -> (n, d) float64 view plus the trailing shape."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name}: expected an array, got {type(x).__name__}")
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if a.ndim < 2:
        raise ValueError(f"{name}: expected shape (n_samples, n_features, ...), got {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one sample, got shape {a.shape}")
    return a.reshape(a.shape[0], -1).astype(np.float64, copy=False), a.shape[1:]


def _check_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {dt}")
    return dt


class _Transform:
    """Shared plumbing: state as a dict of arrays, save/load, fit_transform."""

    _state_keys: tuple = ()  # the fitted arrays
    _param_keys: tuple = ()  # the constructor arguments saved with them (attributes of those names)

    def _unfitted(self, dtype):
        """Sets the output dtype and every fitted array to None (the end of each __init__)."""
        self.dtype = _check_dtype(dtype)
        for k in self._state_keys:
            setattr(self, k, None)

    def _params(self):
        return {k: getattr(self, k) for k in self._param_keys}

    def _check_fitted(self):
        if getattr(self, "mean_", None) is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(x_train) first")

    def _check_features(self, a2, shape, name="x"):
        if shape != self.input_shape_:
            raise ValueError(f"{name}: expected trailing shape {self.input_shape_} "
                             f"(as in fit), got {shape}")

    def fit_transform(self, x):
        """``fit(x)`` then ``transform(x)``: only for the training set."""
        return self.fit(x).transform(x)

    def get_state(self) -> dict:
        """The fitted state as a dict of NumPy arrays (plus the constructor
        arguments), suitable for ``np.savez`` and :meth:`set_state`."""
        self._check_fitted()
        state = {k: np.asarray(getattr(self, k)) for k in self._state_keys}
        state["input_shape_"] = np.asarray(self.input_shape_, dtype=np.int64)
        for k, v in self._params().items():
            state["param_" + k] = np.asarray(-1 if v is None else v)
        return state

    def set_state(self, state: dict):
        """Restore a state produced by :meth:`get_state`; returns self."""
        if not isinstance(state, dict) and not hasattr(state, "files"):
            raise TypeError(f"state: expected a dict of arrays, got {type(state).__name__}")
        missing = [k for k in self._state_keys + ("input_shape_",) if k not in state]
        if missing:
            raise ValueError(f"state: missing keys {missing}")
        from ._transform_state import check_state
        new = copy.copy(self)  # checked whole before self changes
        for k in self._state_keys:
            setattr(new, k, np.asarray(state[k]))
        shape = np.asarray(state["input_shape_"])
        if shape.dtype.kind not in "iu" or shape.ndim != 1:
            raise ValueError(f"input_shape_: expected a 1-D array of ints, got {shape.dtype} {shape.shape}")
        new.input_shape_ = tuple(int(v) for v in shape)
        for k in self._params():
            if "param_" + k in state:
                v = np.asarray(state["param_" + k])
                if v.shape != ():
                    raise ValueError(f"param_{k}: expected one value, got shape {v.shape}")
                setattr(new, k, None if (k == "n_components" and v.item() == -1) else v.item())
        check_state(new)
        self.__dict__.update(new.__dict__)
        return self

    def save(self, path) -> None:
        """Save the fitted state to ``path`` (a ``.npz`` file; ``.npz`` is appended when
        missing, as ``np.savez`` does), atomically as ``Model.save`` (``fastnn._safe_files``)."""
        from . import _safe_files
        state = self.get_state()
        if not isinstance(path, (str, os.PathLike)):  # an open file: written as given
            np.savez(path, **state)
            return
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        _safe_files.atomic_write(path, lambda f: np.savez(f, **state))

    @classmethod
    def load(cls, path, max_bytes=None):
        """Load a transform saved with :meth:`save` (no pickle, no code run). Only the entries
        the transform uses are decompressed, at most ``max_bytes`` (``fastnn.io.load_model``'s
        limit); a damaged or hostile file is a ValueError naming it."""
        from . import _archive
        params = cls.__new__(cls)._init_empty()._params()
        keys = cls._state_keys + ("input_shape_",) + tuple("param_" + k for k in params)
        budget = _archive.Budget(max_bytes, os.fspath(path))
        with _archive.Archive(path) as ar:
            state = {k: ar.read(k, budget) for k in keys if k in ar}
        try:
            return cls.__new__(cls)._init_empty().set_state(state)
        except ValueError as e:
            raise ValueError(f"{os.fspath(path)}: not a valid {cls.__name__} file ({e})") from None

    def _init_empty(self):
        self.__init__()
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class StandardScaler(_Transform):
    """Standardize features with the training set's mean and standard deviation.

    ``fit(x_train)`` stores the per-feature mean and std (computed in float64;
    a constant feature gets std 1 so it maps to 0 instead of dividing by
    zero); ``transform(x)`` returns ``(x - mean) / std`` for any later data.
    ``x`` is (n_samples, ...): images (n, 28, 28) are standardized per pixel.
    ``per_feature=False`` uses one global mean and std instead.

    >>> import numpy as np
    >>> from fastnn.preprocessing import StandardScaler
    >>> x_train = np.array([[0.0, 10.0], [2.0, 30.0]])
    >>> scaler = StandardScaler().fit(x_train)
    >>> scaler.mean_, scaler.scale_
    (array([ 1., 20.]), array([ 1., 10.]))
    >>> scaler.transform(np.array([[1.0, 40.0]]))
    array([[0., 2.]], dtype=float32)
    """

    _state_keys = ("mean_", "scale_")
    _param_keys = ("with_mean", "with_std", "per_feature")

    def __init__(self, with_mean: bool = True, with_std: bool = True,
                 per_feature: bool = True, dtype=np.float32):
        self.with_mean = bool(with_mean)
        self.with_std = bool(with_std)
        self.per_feature = bool(per_feature)
        self._unfitted(dtype)

    def fit(self, x):
        """Compute mean and std of the training set ``x``; returns self."""
        a, self.input_shape_ = _as_2d(x)
        axis = 0 if self.per_feature else None
        d = a.shape[1]
        mean = a.mean(axis=axis) if self.with_mean else np.zeros(d if axis == 0 else ())
        std = a.std(axis=axis) if self.with_std else np.ones(d if axis == 0 else ())
        std = np.where(std < 1e-12, 1.0, std)
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(std, dtype=np.float64)
        return self

    def transform(self, x):
        """``(x - mean_) / scale_`` with the fitted statistics, same shape as ``x``."""
        self._check_fitted()
        a, shape = _as_2d(x)
        self._check_features(a, shape)
        out = (a - self.mean_) / self.scale_
        return out.astype(self.dtype).reshape((a.shape[0],) + shape)

    def inverse_transform(self, z):
        """Undo :meth:`transform`."""
        self._check_fitted()
        a, shape = _as_2d(z, "z")
        self._check_features(a, shape, "z")
        return (a * self.scale_ + self.mean_).astype(self.dtype).reshape((a.shape[0],) + shape)


def per_sample_normalize(x, scale="std", eps: float = 1e-8, dtype=np.float32):
    """Normalize every sample by its own statistics (the notes' per-sample
    normalization): nothing is learned from the training set, so the same
    call serves train, dev and test data.

    ``scale="std"`` (default): ``(x_i - mean(x_i)) / sqrt(var(x_i) + eps)``, each
    sample (an image, a row) to mean 0 and std 1 (brightness and contrast removed);
    ``"l2"``: ``x_i / max(||x_i||, eps)`` (unit length, not centred); ``None``: only
    ``x_i - mean(x_i)``. The statistics run over all of a sample's values; the
    output has ``x``'s shape, in ``dtype``.

    >>> import numpy as np
    >>> from fastnn.preprocessing import per_sample_normalize
    >>> per_sample_normalize(np.array([[1.0, 3.0], [10.0, 30.0]]), eps=0)
    array([[-1.,  1.],
           [-1.,  1.]], dtype=float32)
    """
    if scale not in ("std", "l2", None):
        raise ValueError(f"scale: expected 'std', 'l2' or None, got {scale!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not eps >= 0:
        raise ValueError(f"eps: expected a number >= 0, got {eps!r}")
    dt = _check_dtype(dtype)
    a, shape = _as_2d(x)
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant sample with eps=0: refused below
        if scale == "l2":
            out = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), eps)
        else:
            out = a - a.mean(axis=1, keepdims=True)
            if scale == "std":
                out /= np.sqrt(out.var(axis=1, keepdims=True) + eps)
    if not np.all(np.isfinite(out)):
        raise ValueError("x: a sample is constant (or not finite) and eps=0: its normalization "
                         "divides by zero; use eps > 0")
    return out.astype(dt).reshape((a.shape[0],) + shape)


class ChannelMeanSubtraction(_Transform):
    """Subtract the training set's mean of each channel (the notes' per-channel
    mean subtraction, as AlexNet and VGG do for images): one mean per channel,
    over every sample and every position, ``fit`` on the training set only;
    ``with_std=True`` also divides by each channel's std.

    ``channel_axis`` is the channel axis of ``x`` (-1 for channels-last
    ``(n, H, W, C)``, 1 for channels-first ``(n, C, H, W)``); for ``(n, d)`` data
    each column is a channel. (The mean *image*, one mean per pixel, is
    ``StandardScaler(with_std=False)``.)

    >>> import numpy as np
    >>> from fastnn.preprocessing import ChannelMeanSubtraction
    >>> x = np.zeros((2, 2, 2, 3)); x[..., 0] = 1.0; x[1, ..., 2] = 4.0
    >>> ChannelMeanSubtraction().fit(x).mean_
    array([1., 0., 2.])
    """

    _state_keys = ("mean_", "scale_")
    _param_keys = ("channel_axis", "with_std")

    def __init__(self, channel_axis: int = -1, with_std: bool = False, dtype=np.float32):
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
            raise TypeError(f"channel_axis: expected an int, got {type(channel_axis).__name__}")
        self.channel_axis = int(channel_axis)
        self.with_std = bool(with_std)
        self._unfitted(dtype)

    def _channels_last(self, x, name):
        a = np.asarray(x) if not isinstance(x, (str, bytes)) and x is not None else None
        _as_2d(x, name)  # the shared checks: numeric, (n, ...), n >= 1
        ax = self.channel_axis + a.ndim if self.channel_axis < 0 else self.channel_axis
        if not 1 <= ax < a.ndim:
            raise ValueError(f"channel_axis: {self.channel_axis} is not a non-batch axis of "
                             f"{name} with shape {a.shape}")
        return np.moveaxis(a, ax, -1).astype(np.float64, copy=False), ax

    def fit(self, x):
        """Per-channel mean (and std) of the training set ``x``; returns self."""
        a, _ = self._channels_last(x, "x")
        flat = a.reshape(-1, a.shape[-1])
        self.input_shape_ = tuple(np.asarray(x).shape[1:])
        self.mean_ = flat.mean(axis=0)
        std = flat.std(axis=0) if self.with_std else np.ones(flat.shape[1])
        self.scale_ = np.where(std < 1e-12, 1.0, std)
        return self

    def transform(self, x):
        """``(x - mean_) / scale_`` per channel, same shape as ``x``."""
        self._check_fitted()
        a, ax = self._channels_last(x, "x")
        self._check_features(a, tuple(np.asarray(x).shape[1:]))
        return np.moveaxis((a - self.mean_) / self.scale_, -1, ax).astype(self.dtype)

    def inverse_transform(self, z):
        """Undo :meth:`transform`."""
        self._check_fitted()
        a, ax = self._channels_last(z, "z")
        self._check_features(a, tuple(np.asarray(z).shape[1:]), "z")
        return np.moveaxis(a * self.scale_ + self.mean_, -1, ax).astype(self.dtype)


class PCA(_Transform):
    """Principal component analysis on the training set, optionally whitened.

    ``fit`` centres ``x`` (n, d) with its mean and takes the SVD of the
    centred data: ``components_`` (k, d) are the top eigenvectors of the
    covariance ``X^T X / n`` and ``explained_variance_`` their eigenvalues.
    ``transform`` projects onto them; with ``whiten=True`` each projection is
    divided by ``sqrt(eigenvalue + eps)``, so the training set's covariance
    becomes (nearly) the identity. ``n_components`` is an int, a float in
    (0, 1) (keep enough components for that fraction of the variance), or
    None for all.

    >>> import numpy as np
    >>> from fastnn.preprocessing import PCA
    >>> x = np.random.default_rng(0).normal(size=(500, 5)) @ np.diag([5, 3, 1, .1, .1])
    >>> pca = PCA(2, whiten=True, eps=0).fit(x)
    >>> z = pca.transform(x)
    >>> np.allclose(z.T @ z / len(z), np.eye(2), atol=1e-5)
    True
    """

    _state_keys = ("mean_", "components_", "explained_variance_", "explained_variance_ratio_")
    _param_keys = ("n_components", "whiten", "eps")

    def __init__(self, n_components=None, whiten: bool = False, eps: float = 1e-5,
                 dtype=np.float32):
        if n_components is not None:
            if isinstance(n_components, bool) or not isinstance(
                    n_components, (int, float, np.integer, np.floating)):
                raise TypeError(f"n_components: expected an int, a float in (0, 1) or None, "
                                f"got {type(n_components).__name__}")
            if isinstance(n_components, (float, np.floating)) and not float(n_components).is_integer():
                if not 0 < n_components < 1:
                    raise ValueError(f"n_components: a fraction must be in (0, 1), "
                                     f"got {n_components}")
            elif n_components < 1:
                raise ValueError(f"n_components: expected >= 1, got {n_components}")
            else:
                n_components = int(n_components)
        if not np.isfinite(eps) or eps < 0:
            raise ValueError(f"eps: expected a finite number >= 0, got {eps}")
        self.n_components = n_components
        self.whiten = bool(whiten)
        self.eps = float(eps)
        self._unfitted(dtype)

    def _fit_basis(self, x):
        a, self.input_shape_ = _as_2d(x)
        n, d = a.shape
        self.mean_ = a.mean(axis=0)
        centred = a - self.mean_
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        var = s ** 2 / n
        total = var.sum()
        ratio = var / total if total > 0 else np.zeros_like(var)
        return vt, var, ratio

    def fit(self, x):
        """Fit the principal axes to the training set ``x``; returns self."""
        vt, var, ratio = self._fit_basis(x)
        k = self.n_components
        if k is None:
            k = len(var)
        elif isinstance(k, float):
            # the fewest components explaining that fraction; 1 when the data has no variance,
            # and at most all of them (the ratios' sum may round to just below the fraction)
            k = min(int(np.searchsorted(np.cumsum(ratio), k) + 1), len(var)) if ratio.any() else 1
        if k > len(var):
            raise ValueError(f"n_components: {k} is more than min(n_samples, n_features) = "
                             f"{len(var)}")
        self.components_ = vt[:k]
        self.explained_variance_ = var[:k]
        self.explained_variance_ratio_ = ratio[:k]
        return self

    @property
    def n_components_(self) -> int:
        """Number of components kept."""
        self._check_fitted()
        return len(self.components_)

    def transform(self, x):
        """Project ``x`` (n, d) onto the components: (n, k), whitened if asked."""
        self._check_fitted()
        a, shape = _as_2d(x)
        self._check_features(a, shape)
        z = (a - self.mean_) @ self.components_.T
        if self.whiten:
            z /= np.sqrt(self.explained_variance_ + self.eps)
        return z.astype(self.dtype)

    def inverse_transform(self, z):
        """Map projections back to the input space (lossy when k < d)."""
        self._check_fitted()
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.n_components_:
            raise ValueError(f"z: expected shape (n, {self.n_components_}), got {z.shape}")
        if self.whiten:
            z = z * np.sqrt(self.explained_variance_ + self.eps)
        out = z @ self.components_ + self.mean_
        return out.astype(self.dtype).reshape((len(z),) + self.input_shape_)


class ZCA(PCA):
    """ZCA whitening: decorrelate and equalize variances, staying close to the data.

    Rotate into the PCA basis, divide each axis by ``sqrt(eigenvalue + eps)``,
    rotate back: ``z = (x - mean) U diag(1/sqrt(S + eps)) U^T``. The output has
    the input's shape (whitened images still look like images) and the
    training set's covariance becomes (nearly) the identity; ``eps`` keeps
    the near-zero-variance directions from being blown up.

    >>> import numpy as np
    >>> from fastnn.preprocessing import ZCA
    >>> x = np.random.default_rng(0).normal(size=(400, 3)) @ np.array([[2, 1, 0], [0, 1, 0], [0, 0, 3.]])
    >>> z = ZCA(eps=0).fit_transform(x)
    >>> np.allclose(z.T @ z / len(z), np.eye(3), atol=1e-5)
    True
    """

    _param_keys = ("eps",)

    def __init__(self, eps: float = 1e-5, dtype=np.float32):
        super().__init__(n_components=None, whiten=True, eps=eps, dtype=dtype)


    def transform(self, x):
        """Whiten ``x`` with the training set's statistics; same shape as ``x``."""
        self._check_fitted()
        a, shape = _as_2d(x)
        self._check_features(a, shape)
        z = (a - self.mean_) @ self.components_.T
        z /= np.sqrt(self.explained_variance_ + self.eps)
        z = z @ self.components_
        return z.astype(self.dtype).reshape((a.shape[0],) + shape)

    def inverse_transform(self, z):
        """Undo the whitening."""
        self._check_fitted()
        a, shape = _as_2d(z, "z")
        self._check_features(a, shape, "z")
        r = (a @ self.components_.T) * np.sqrt(self.explained_variance_ + self.eps)
        out = r @ self.components_ + self.mean_
        return out.astype(self.dtype).reshape((a.shape[0],) + shape)


def one_hot(labels, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """Integer class ids (n,) -> one-hot rows (n, num_classes).

    ``num_classes`` defaults to ``max(labels) + 1``; labels outside
    ``[0, num_classes)`` raise ``ValueError``.

    >>> from fastnn.preprocessing import one_hot
    >>> one_hot([0, 2, 1], 3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    y = np.asarray(labels)
    if y.dtype == object or not (np.issubdtype(y.dtype, np.integer)
                                 or (np.issubdtype(y.dtype, np.floating)
                                     and np.all(np.mod(y, 1) == 0))):
        raise TypeError(f"labels: expected integer class ids, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"labels: expected shape (n,), got {y.shape}")
    y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"num_classes: expected an int, got {type(num_classes).__name__}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels: expected values in [0, {num_classes}), "
                         f"got min {y.min()}, max {y.max()}")
    out = np.zeros((y.size, num_classes), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out
