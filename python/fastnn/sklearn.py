"""scikit-learn estimators backed by fastnn: :class:`MLPClassifier` and
:class:`MLPRegressor`, usable in pipelines, grid searches and
``cross_val_score`` (scikit-learn is an optional dependency).

Parameter names follow scikit-learn's own MLP estimators where they exist
(``hidden_layer_sizes``, ``activation``, ``alpha``, ``batch_size``,
``learning_rate_init``, ``max_iter``, ``shuffle``, ``random_state``,
``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``tol``),
plus fastnn's ``optimizer``, ``batchnorm`` and ``dropout``.
"""
from __future__ import annotations

import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
    try:
        from sklearn.utils.validation import validate_data as _validate_data
    except ImportError:  # scikit-learn < 1.6
        def _validate_data(est, X, y="no_validation", reset=True, **kw):
            return est._validate_data(X, y, reset=reset, **kw)
except ImportError as e:  # pragma: no cover
    raise ImportError("fastnn.sklearn needs scikit-learn: pip install scikit-learn") from e

from ._validate import Integral, Interval, Options, Real, validate

__all__ = ["MLPClassifier", "MLPRegressor"]

_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
_POS_INT = Interval(Integral, 1, None, closed="left")
_CONSTRAINTS = {  # fastnn._validate, not scikit-learn's own _parameter_constraints machinery
    "optimizer": [Options(str, set(_OPTIMIZERS))],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "max_iter": [_POS_INT], "n_iter_no_change": [_POS_INT],
    "batch_size": [_POS_INT, Options(str, {"auto"})],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "momentum": [Interval(Real, 0, 1, closed="left")], "tol": [Interval(Real, 0, None, closed="left")],
}


class _BaseMLP(BaseEstimator):
    """``alpha`` means what it means in scikit-learn's MLPs: the penalty
    ``0.5 * alpha * sum(W**2) / m`` over the kernels (biases excluded) is added to the
    loss of every mini-batch of ``m`` samples (the last, smaller batch with its own ``m``).
    That is the notes' L2 term ``(lambda / 2m) * sum ||W||^2`` with ``lambda = alpha``.
    (fastnn's ``regularizers.L2(l2)`` adds ``l2 * sum(W**2)`` instead; ``alpha`` is
    ``L2(0.5 * alpha / m)`` at a fixed batch size ``m``.)"""

    _loss = None
    _penalty_scale = 1.0

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", optimizer="adam",
                 learning_rate_init=1e-3, alpha=1e-4, batch_size=200, max_iter=200,
                 shuffle=True, random_state=None, batchnorm=False, dropout=0.0,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, momentum=0.9, verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.momentum = momentum
        self.verbose = verbose

    # -- checks ----------------------------------------------------------------
    def _check_params(self):
        h = self.hidden_layer_sizes
        if isinstance(h, (int, np.integer)) and not isinstance(h, bool):
            h = (int(h),)
        try:
            h = tuple(int(u) for u in h)
        except (TypeError, ValueError):
            raise TypeError(f"hidden_layer_sizes: expected a tuple of ints, got {h!r}") from None
        if any(u < 1 for u in h):
            raise ValueError(f"hidden_layer_sizes: every size must be >= 1, got {h}")
        validate(self.get_params(deep=False), _CONSTRAINTS, type(self).__name__)
        return h

    def _seed(self):
        rs = self.random_state
        if rs is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2**31 - 1))
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
            return int(rs)
        raise ValueError(f"random_state: expected None, an int or a RandomState, got {rs!r}")

    # -- model -------------------------------------------------------------------
    def _build(self, n_features, n_outputs, output_activation, seed):
        self._n_outputs_ = int(n_outputs)
        from . import initializers, optimizers, regularizers
        from . import layers as L
        from .models import Sequential
        hidden = self._check_params()
        initializers.set_random_seed(seed)
        act = self.activation
        relu_like = str(act).lower() in ("relu", "leaky_relu", "elu", "selu", "swish", "silu")
        init = "he_normal" if relu_like else "glorot_uniform"
        # scikit-learn's penalty, 0.5 alpha sum(W^2) / batch size, kernels only (no biases);
        # MSE is twice scikit-learn's squared loss, so the regressor doubles it (same objective)
        self._penalty_ = regularizers.BatchMeanL2(float(self.alpha) * self._penalty_scale) \
            if self.alpha else None
        reg = {"kernel_regularizer": self._penalty_} if self.alpha else {}
        model = Sequential([L.Input(n_features)])
        for k, units in enumerate(hidden):
            if self.batchnorm:
                model.add(L.Dense(units, kernel_initializer=init, use_bias=False, **reg))
                model.add(L.BatchNormalization())
                model.add(L.Activation(act))
            else:
                model.add(L.Dense(units, activation=act, kernel_initializer=init, **reg))
            if self.dropout:
                model.add(L.Dropout(float(self.dropout), seed=seed + 1 + k))
        model.add(L.Dense(n_outputs, activation=output_activation, **reg))
        model.build()
        lr = float(self.learning_rate_init)
        opt = {"adam": lambda: optimizers.Adam(learning_rate=lr),
               "adamw": lambda: optimizers.AdamW(learning_rate=lr),
               "sgd": lambda: optimizers.SGD(learning_rate=lr, momentum=float(self.momentum)),
               "rmsprop": lambda: optimizers.RMSprop(learning_rate=lr),
               "adagrad": lambda: optimizers.Adagrad(learning_rate=lr)}[self.optimizer]()
        model.compile(optimizer=opt, loss=self._loss)
        return model

    def _batch(self, n):
        bs = 200 if self.batch_size == "auto" else int(self.batch_size)
        bs = min(bs, n)
        if self.batchnorm and n > 1 and (bs == 1 or n % bs == 1):
            bs = bs + 1 if bs + 1 <= n else bs - 1  # BatchNorm needs >= 2 rows in every batch
        return max(bs, 1)

    def _epochs(self, model, X, y, epochs, seed, incremental=False):
        """Train, with early stopping on the training loss (or a validation
        split), as scikit-learn's MLPs do; fills loss_curve_ and n_iter_."""
        from .callbacks import Callback
        n = X.shape[0]
        bs = self._batch(n)
        fit_kw = {}
        xv = yv = None
        if self.early_stopping and not incremental and n >= 10:
            rng = np.random.default_rng(seed)
            order = rng.permutation(n)
            nv = max(1, int(round(self.validation_fraction * n)))
            X, y, xv, yv = X[order[nv:]], y[order[nv:]], X[order[:nv]], y[order[:nv]]
            fit_kw["validation_data"] = (xv, yv)
            n = X.shape[0]
            bs = self._batch(n)
        tol, patience = float(self.tol), int(self.n_iter_no_change)
        est = self

        class _Stop(Callback):
            def __init__(self):
                super().__init__()
                self.best, self.wait = np.inf, 0

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                est.loss_curve_.append(float(logs.get("loss", np.nan)))
                if incremental:
                    return
                key = "val_loss" if "val_loss" in logs else "loss"
                cur = float(logs.get(key, np.nan))
                if not np.isfinite(cur):
                    self.model.stop_training = True
                    return
                if cur > self.best - tol:
                    self.wait += 1
                    if self.wait >= patience:
                        self.model.stop_training = True
                else:
                    self.wait = 0
                if cur < self.best:
                    self.best = cur

        stop = _Stop()
        cbs = [stop]
        penalty = getattr(self, "_penalty_", None)
        if penalty is not None:
            cbs.insert(0, _BatchSize(penalty, n, bs))
        before = len(self.loss_curve_)
        model.fit(X, y, batch_size=bs, epochs=epochs, verbose=2 if self.verbose else 0,
                  shuffle=bool(self.shuffle), seed=seed, callbacks=cbs, **fit_kw)
        self.n_iter_ = getattr(self, "n_iter_", 0) * incremental + (len(self.loss_curve_) - before)
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else np.nan

    def _raw_predict(self, X):
        check_is_fitted(self, "model_")
        X = _validate_data(self, X, reset=False, dtype=np.float32)
        return self.model_.predict(X)

    # -- pickling: architecture, weights, layer and optimizer state; never the kernels' buffers
    def __getstate__(self):
        state = self.__dict__.copy()
        model = state.pop("model_", None)
        if model is not None:  # everything partial_fit continues from (a copy trains on as the original)
            opt = model.optimizer
            state["_model_weights"] = model.get_weights()
            state["_model_layer_state"] = [{k: np.array(v) for k, v in layer._extra_state().items()}
                                           for layer in model.layers]
            state["_model_optimizer"] = ({k: np.array(v) for k, v in opt.state.items()}, int(opt.iterations),
                                         int(opt.epoch)) if opt.state else None
        return state

    def __setstate__(self, state):
        weights = state.pop("_model_weights", None)
        layer_state = state.pop("_model_layer_state", None)
        opt_state = state.pop("_model_optimizer", None)
        self.__dict__.update(state)
        if weights is not None:  # same parameters -> same architecture; then the weights
            model = self._build(self.n_features_in_, self._n_outputs_, self._output_activation,
                                self._seed_)
            model.set_weights(weights)
            for layer, extra in zip(model.layers, layer_state or ()):
                if extra:
                    layer._set_extra_state(extra)
            if opt_state is not None:
                slots, iterations, epoch = opt_state
                opt = model.optimizer
                opt.build(model.arena.size, model.dtype)
                for k, a in slots.items():
                    opt.state[k][...] = a
                opt.iterations, opt.epoch = iterations, epoch
            self.model_ = model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


def _BatchSize(penalty, n, bs):
    """A callback that tells the penalty the size of the next mini-batch (n samples in
    batches of bs, the last one smaller)."""
    from .callbacks import Callback

    class _SetBatchSize(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            penalty.batch_size = min(bs, n)

        def on_train_batch_end(self, batch, logs=None):
            rest = n - (batch + 1) * bs
            if rest > 0:
                penalty.batch_size = min(bs, rest)

    return _SetBatchSize()


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier trained by fastnn (softmax output,
    cross-entropy loss, scikit-learn's L2 penalty ``alpha`` on the kernels), with optional
    BatchNorm and dropout. Labels may be any values (strings included);
    ``classes_`` holds them sorted.

    Training stops after ``max_iter`` epochs or when the training loss (the
    validation loss with ``early_stopping=True``) has not improved by ``tol``
    for ``n_iter_no_change`` epochs. ``partial_fit`` runs one epoch.

    >>> from sklearn.datasets import load_iris
    >>> from fastnn.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=100,
    ...                     random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    _loss = "sparse_categorical_crossentropy"
    _output_activation = "softmax"

    def _prepare(self, X, y, reset):
        X, y = _validate_data(self, X, y, reset=reset, dtype=np.float32)
        check_classification_targets(y)
        return X, y

    def fit(self, X, y):
        """Train from scratch on ``X`` (n_samples, n_features) and labels ``y``; returns self."""
        X, y = self._prepare(X, y, reset=True)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.loss_curve_ = []
        self.n_iter_ = 0
        seed = self._seed()
        self._seed_ = seed
        if len(self.classes_) < 2:
            raise ValueError(f"y: needs samples of at least 2 classes in the data, but the data "
                             f"contains only one class: {self.classes_[0]!r}")
        self.model_ = self._build(X.shape[1], len(self.classes_), "softmax", seed)
        self._epochs(self.model_, X, codes.astype(np.int64), int(self.max_iter), seed)
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch on ``(X, y)``; the first call needs ``classes`` (all labels
        that will ever appear). Returns self."""
        first = not hasattr(self, "model_")
        X, y = self._prepare(X, y, reset=first)
        if first:
            if classes is None:
                raise ValueError("classes: the first call to partial_fit needs every class label")
            self.classes_ = np.unique(np.asarray(classes))
            if len(self.classes_) < 2:
                raise ValueError(f"classes: expected at least 2 classes, got {self.classes_!r}")
            self.loss_curve_ = []
            self.n_iter_ = 0
            self._seed_ = self._seed()
            self.model_ = self._build(X.shape[1], len(self.classes_), "softmax", self._seed_)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes: {np.unique(classes)!r} differs from the classes of the "
                             f"first call {self.classes_!r}")
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y: labels {unknown!r} are not in classes {self.classes_!r}")
        codes = np.searchsorted(self.classes_, y).astype(np.int64)
        self._epochs(self.model_, X, codes, 1, self._seed_ + self.n_iter_, incremental=True)
        return self

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes), columns in ``classes_`` order."""
        p = self._raw_predict(X).astype(np.float64)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class label for each row of ``X``."""
        codes = np.argmax(self._raw_predict(X), axis=1)
        return self.classes_[codes]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor trained by fastnn (linear output,
    mean squared error, scikit-learn's L2 penalty ``alpha``), with optional BatchNorm and
    dropout; ``y`` may have several columns. ``score`` is R².

    >>> import numpy as np
    >>> from fastnn.sklearn import MLPRegressor
    >>> X = np.random.default_rng(0).uniform(-1, 1, size=(300, 2)); y = X[:, 0] - 2 * X[:, 1]
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True
    """

    _loss = "mse"
    _output_activation = None
    _penalty_scale = 2.0  # fastnn's MSE is twice scikit-learn's squared loss 0.5 * mean((y - p)^2)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _prepare(self, X, y, reset):
        X, y = _validate_data(self, X, y, reset=reset, dtype=np.float32, multi_output=True,
                              y_numeric=True)
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2 and y.shape[1] == 1:  # scikit-learn's MLPRegressor: one target, 1-D predictions
            from sklearn.exceptions import DataConversionWarning
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the "
                          "shape of y to (n_samples, ), for example using ravel().", DataConversionWarning,
                          stacklevel=3)
            y = y[:, 0]
        return X, y

    def _targets(self, y):
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def fit(self, X, y):
        """Train from scratch on ``X`` and targets ``y`` (n,) or (n, k); returns self."""
        X, y = self._prepare(X, y, reset=True)
        self._y_ndim = y.ndim
        yy = self._targets(y)
        self.loss_curve_ = []
        self.n_iter_ = 0
        seed = self._seed_ = self._seed()
        self.model_ = self._build(X.shape[1], yy.shape[1], None, seed)
        self._epochs(self.model_, X, yy, int(self.max_iter), seed)
        return self

    def partial_fit(self, X, y):
        """One epoch on ``(X, y)``, continuing from the current weights; returns self."""
        first = not hasattr(self, "model_")
        X, y = self._prepare(X, y, reset=first)
        yy = self._targets(y)
        if first:
            self._y_ndim = y.ndim
            self.loss_curve_ = []
            self.n_iter_ = 0
            self._seed_ = self._seed()
            self.model_ = self._build(X.shape[1], yy.shape[1], None, self._seed_)
        self._epochs(self.model_, X, yy, 1, self._seed_ + self.n_iter_,
                     incremental=True)
        return self

    def predict(self, X):
        """Predicted targets, (n_samples,) or (n_samples, k) as in fit."""
        out = self._raw_predict(X).astype(np.float64)
        return out[:, 0] if self._y_ndim == 1 else out
