"""``LambdaCallback`` (Keras 3's, re-exported by ``fastnn.callbacks``): a callback from plain
functions, each called with the hook's arguments (``on_epoch_end(epoch, logs)``,
``on_train_begin(logs)``, ``on_train_batch_end(batch, logs)``, ...)."""
from __future__ import annotations

from .callbacks import Callback

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
         "on_predict_batch_begin", "on_predict_batch_end")


class LambdaCallback(Callback):
    """``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``: the functions given replace those
    hooks (instance attributes, as Keras 3); the other hooks do nothing. Other keyword names
    (``on_test_end=...``) are taken when they name a hook, refused otherwise."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        unknown = sorted(k for k in given if k not in HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hook(s) {', '.join(unknown)}; hooks: {', '.join(HOOKS)}")
        for hook, fn in given.items():
            if fn is not None and not callable(fn):
                raise TypeError(f"{hook}: expected a function, got {type(fn).__name__}")
        for hook, fn in given.items():
            if fn is not None:
                setattr(self, hook, fn)
