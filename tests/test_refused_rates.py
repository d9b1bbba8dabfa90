"""A learning rate that is NaN, infinite or negative is refused by every optimizer before
anything changes (weights, slots, iterations, clipped gradients), in the Python step and in
the native step alike (Nadam, Adamax and Lion's NumPy updates wrote NaN weights before)."""
import numpy as np
import pytest

import fastnn
from fastnn import optimizers as O
from fastnn.layers import BatchNormalization, Dense, Dropout

OPTS = {"adam": O.Adam, "sgd": lambda lr: O.SGD(lr, momentum=0.9), "rmsprop": O.RMSprop, "adagrad": O.Adagrad,
        "nadam": O.Nadam, "adamax": O.Adamax, "lion": O.Lion,
        "adam_clip": lambda lr: O.Adam(lr, global_clipnorm=0.1)}


class _Bad(fastnn.schedules.LearningRateSchedule):
    def __init__(self, good, bad):
        self.good, self.bad = good, bad

    def __call__(self, step):
        return 1e-2 if step < self.good else self.bad

    def get_config(self):
        return {"good": self.good, "bad": self.bad}


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1e-3])
@pytest.mark.parametrize("opt", list(OPTS))
def test_a_bad_rate_is_refused_and_changes_nothing(monkeypatch, native, bad, opt):
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 5)).astype(np.float32), rng.integers(0, 3, 16)
    fastnn.utils.set_random_seed(2)
    m = fastnn.Sequential([Dense(8, activation="relu", input_dim=5), BatchNormalization(), Dropout(0.2, seed=1),
                           Dense(3, activation="softmax")])
    m.compile(OPTS[opt](_Bad(2, bad)), "sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)  # steps 0 and 1: good rates
    before = [w.copy() for w in m.get_weights()] + [a.copy() for a in m.optimizer.state.values()]
    with pytest.raises(ValueError, match="lr"):
        m.train_on_batch(x[:8], y[:8])
    after = [w.copy() for w in m.get_weights()] + [a.copy() for a in m.optimizer.state.values()]
    assert m.optimizer.iterations == 2
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
