"""Every learning-rate schedule's values."""
import math

import pytest

from fastnn import schedules as S


def test_inverse_time_decay_course_notes_form():
    s = S.InverseTimeDecay(0.2, decay_steps=1, decay_rate=0.5)
    assert [s(e) for e in range(4)] == pytest.approx([0.2, 0.2 / 1.5, 0.1, 0.2 / 2.5])


def test_inverse_time_decay_staircase():
    s = S.InverseTimeDecay(1.0, decay_steps=10, decay_rate=1.0, staircase=True)
    assert [s(0), s(9), s(10), s(25)] == pytest.approx([1.0, 1.0, 0.5, 1 / 3])


def test_exponential_decay_smooth_and_staircase():
    s = S.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)
    assert [s(0), s(50), s(100), s(200)] == pytest.approx([0.1, 0.1 * 0.5 ** 0.5, 0.05, 0.025])
    st = S.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5, staircase=True)
    assert [st(99), st(100), st(199), st(200)] == pytest.approx([0.1, 0.05, 0.05, 0.025])


def test_piecewise_constant_boundaries_inclusive():
    s = S.PiecewiseConstantDecay([100, 200], [1.0, 0.5, 0.1])
    assert [s(0), s(100), s(101), s(200), s(201)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    with pytest.raises(ValueError, match="len\\(boundaries\\) \\+ 1"):
        S.PiecewiseConstantDecay([1, 2], [1.0, 0.5])


def test_cosine_decay():
    s = S.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert s(0) == pytest.approx(1.0)
    assert s(50) == pytest.approx(0.9 * 0.5 + 0.1)
    assert s(100) == pytest.approx(0.1)
    assert s(1000) == pytest.approx(0.1)
    assert S.CosineDecay(2.0, 10)(5) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi / 2)))


def test_serialize_round_trip():
    s = S.ExponentialDecay(0.1, 7, 0.3, staircase=True, per_epoch=True)
    t = S.deserialize(S.serialize(s))
    assert t.get_config() == s.get_config() and t(15) == s(15)


def test_inverse_time_decay_per_epoch_reproduces_the_notes_table_in_training():
    """The notes: lr0 = 0.2, decay 1 -> epochs 1..4 at 0.1, 0.067, 0.05, 0.04."""
    import numpy as np
    import fastnn
    from fastnn import layers as L
    from fastnn.callbacks import Callback

    seen = []

    class Record(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.model.optimizer.current_learning_rate())

    model = fastnn.models.Sequential([L.Input(2), L.Dense(1)])
    model.compile(optimizer=fastnn.optimizers.SGD(
        learning_rate=S.InverseTimeDecay(0.2, decay_steps=1, decay_rate=1.0, per_epoch=True)), loss="mse")
    x = np.zeros((4, 2), np.float32)
    model.fit(x, np.zeros((4, 1), np.float32), epochs=4, verbose=0, callbacks=[Record()])
    assert seen == pytest.approx([0.2 / 2, 0.2 / 3, 0.2 / 4, 0.2 / 5])
    assert [round(v, 3) for v in seen] == [0.1, 0.067, 0.05, 0.04]


def test_inverse_time_decay_per_step_keeps_keras_meaning():
    s = S.InverseTimeDecay(0.2, decay_steps=1, decay_rate=1.0)
    assert [s(t) for t in range(3)] == pytest.approx([0.2, 0.1, 0.2 / 3])
