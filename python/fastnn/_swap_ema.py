"""``SwapEMAWeights`` (Keras 3's callback, re-exported by ``fastnn.callbacks``): evaluate,
predict or checkpoint with the optimizer's moving average of the weights (``use_ema=True``).

Around evaluation and prediction (``on_test_*``, ``on_predict_*``, called by trainers that
have those hooks) the average is swapped in, then out. ``swap_on_epoch=True``: swapped in at
each epoch's end (callbacks after it, e.g. ModelCheckpoint, see the average), out at the next
epoch's start. The optimizer tracks whether they are swapped, so the end of ``fit`` keeps
the average in the model either way.
"""
from __future__ import annotations

from .callbacks import Callback


class SwapEMAWeights(Callback):
    """Swap the weights and the optimizer's moving average around evaluation (Keras 3)."""

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = bool(swap_on_epoch)

    def _opt(self):
        opt = getattr(self.model, "optimizer", None)
        if not getattr(opt, "use_ema", False):
            raise ValueError("SwapEMAWeights: the model's optimizer must have use_ema=True, got "
                             f"{type(opt).__name__ if opt is not None else None} without it")
        return opt

    def _set(self, in_model):
        opt = self._opt()
        if getattr(opt, "_average_params", None) is None:
            return  # no step taken yet: nothing averaged
        if getattr(opt, "_average_swapped", False) != in_model:
            opt.swap_ema_weights()

    def on_train_begin(self, logs=None):
        self._opt()  # refused before any step, as Keras

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._set(False)

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._set(True)

    def on_test_begin(self, logs=None):
        self._set(True)

    def on_test_end(self, logs=None):
        self._set(False)

    def on_predict_begin(self, logs=None):
        self._set(True)

    def on_predict_end(self, logs=None):
        self._set(False)
