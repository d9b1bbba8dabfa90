"""What makes a training step indivisible: for other threads, and for Ctrl-C.

Two locks per model, kept outside the model (a weak dictionary) so that
``copy.deepcopy`` of a model gives the copy its own:

- ``model_lock(model)``: fit, evaluate, predict and compute_loss_and_gradients of
  one model run one at a time (layers write into buffers they own); held for a whole
  call.
- ``step_lock(model)``: held during each training step (forward, backward, optimizer
  update, BatchNormalization statistics, Dropout counters) and by ``get_weights``,
  ``set_weights``, ``save``, ``save_weights`` and ``load_weights``. Another thread
  reading the model during ``fit`` therefore sees the state between two steps, never
  half of one.

``StepGuard`` makes each step atomic with respect to ``KeyboardInterrupt`` as well:
for the duration of a fit run in the main thread, SIGINT goes to a handler that, while
a step is running, only records the signal; the step completes (weights, optimizer
slots, ``iterations``, BatchNormalization statistics and Dropout counters all advance
together) and the previous handler is then called (by default it raises
``KeyboardInterrupt``). Outside a step the previous handler runs at once. The handler
is installed once per fit (installing one costs tens of microseconds, too much per
step) and the previous one is put back when fit returns or raises.
"""
from __future__ import annotations

import signal
import threading
import weakref

_LOCKS: "weakref.WeakKeyDictionary[object, tuple]" = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def _locks(model):
    pair = _LOCKS.get(model)
    if pair is None:
        with _GUARD:
            pair = _LOCKS.get(model)
            if pair is None:
                pair = _LOCKS[model] = (threading.RLock(), threading.RLock())
    return pair


def model_lock(model):
    """The lock held by fit / evaluate / predict / compute_loss_and_gradients (whole calls)."""
    return _locks(model)[0]


def step_lock(model):
    """The lock held during each training step and by the readers and writers of the
    model's whole state (get_weights, set_weights, save, load_weights)."""
    return _locks(model)[1]


class StepGuard:
    """``with guard:`` around a fit's epochs; ``guard.begin()`` / ``guard.end()`` around each
    step (``end`` in a ``finally``). See the module docstring."""

    def __init__(self, model):
        self.lock = step_lock(model)
        self._in_step = False
        self._pending = None
        self._previous = None
        self._handler = self._on_sigint  # one bound method, to recognise it when uninstalling

    def _on_sigint(self, signum, frame):
        if self._in_step:
            self._pending = (signum, frame)
        else:
            self._previous(signum, frame)

    def __enter__(self):
        self._previous, self._pending = None, None
        if threading.current_thread() is threading.main_thread():
            try:
                previous = signal.getsignal(signal.SIGINT)
                if callable(previous):  # SIG_IGN / SIG_DFL / None (set outside Python): left alone
                    signal.signal(signal.SIGINT, self._handler)
                    self._previous = previous
            except ValueError:  # not the main interpreter
                pass
        return self

    def __exit__(self, *exc):
        previous, self._previous = self._previous, None
        if previous is not None and signal.getsignal(signal.SIGINT) == self._handler:
            signal.signal(signal.SIGINT, previous)  # unless someone installed theirs meanwhile
        pending, self._pending = self._pending, None
        if pending is not None and previous is not None and exc[0] is None:
            previous(*pending)
        return False

    def begin(self):
        self._in_step = True  # first: a SIGINT from here on waits for end()
        self.lock.acquire()

    def end(self):
        self.lock.release()
        self._in_step = False
        if self._pending is not None:
            pending, self._pending = self._pending, None
            if self._previous is not None:
                self._previous(*pending)
