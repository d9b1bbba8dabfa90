"""Initializers: statistics, seeding, names."""
import numpy as np
import pytest

from fastnn import initializers as I

SHAPE = (400, 300)


@pytest.mark.parametrize("cls,std", [
    (I.GlorotUniform, np.sqrt(2 / 700)), (I.GlorotNormal, np.sqrt(2 / 700)),
    (I.HeUniform, np.sqrt(2 / 400)), (I.HeNormal, np.sqrt(2 / 400)),
    (I.LecunUniform, np.sqrt(1 / 400)), (I.LecunNormal, np.sqrt(1 / 400)),
])
def test_variance_scaling_family_standard_deviation(cls, std):
    w = cls(seed=0)(SHAPE)
    assert w.dtype == np.float32 and w.shape == SHAPE
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.01 * std * 10


def test_uniform_limits_and_truncation():
    w = I.HeUniform(seed=0)(SHAPE)
    assert np.abs(w).max() <= np.sqrt(6 / 400)
    t = I.HeNormal(seed=0)(SHAPE)
    assert np.abs(t).max() <= 2 * np.sqrt(2 / 400) / 0.8796256610342398 + 1e-6


@pytest.mark.parametrize("mode,n", [("fan_in", 400), ("fan_out", 300), ("fan_avg", 350)])
@pytest.mark.parametrize("dist", ["normal", "truncated_normal", "uniform"])
def test_variance_scaling_modes(mode, dist, n):
    w = I.VarianceScaling(3.0, mode, dist, seed=1)(SHAPE, "float64")
    assert w.dtype == np.float64 and w.std() == pytest.approx(np.sqrt(3.0 / n), rel=0.02)


def test_seeded_is_reproducible_unseeded_follows_global_seed():
    np.testing.assert_array_equal(I.GlorotUniform(seed=3)((5, 5)), I.GlorotUniform(seed=3)((5, 5)))
    I.set_random_seed(7)
    a = I.RandomNormal()((5, 5))
    I.set_random_seed(7)
    np.testing.assert_array_equal(a, I.RandomNormal()((5, 5)))


def test_constant_zeros_ones_random():
    assert (I.get("zeros")((2, 3)) == 0).all() and (I.get("ones")(4) == 1).all()
    assert (I.Constant(0.5)((3,)) == 0.5).all()
    w = I.RandomUniform(limit=0.2, seed=0)((1000,))
    assert w.min() >= -0.2 and w.max() <= 0.2 and w.min() < -0.19
    assert I.RandomNormal(stddev=0.01, seed=0)((10000,)).std() == pytest.approx(0.01, rel=0.05)


def test_names_and_serialization():
    assert isinstance(I.get("he_normal"), I.HeNormal)
    v = I.get(I.serialize(I.VarianceScaling(2.0, "fan_out", "uniform", seed=4)))
    assert v.get_config() == {"scale": 2.0, "mode": "fan_out", "distribution": "uniform", "seed": 4,
                              "input_axes": None, "output_axes": None}  # Keras 3's keys
    with pytest.raises(ValueError, match="known: zeros, ones"):
        I.get("xavier")
    with pytest.raises(ValueError, match="known: fan_in"):
        I.VarianceScaling(mode="fan")


def test_a_seeded_instance_is_a_stream():
    """PORTING_FROM_KERAS.md: each call of one seeded instance draws new values (two layers
    sharing it never start identical); a new instance with the seed repeats the first draw."""
    init = I.GlorotUniform(seed=1)
    a, b = init((4, 3)), init((4, 3))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(I.GlorotUniform(seed=1)((4, 3)), a)
    import fastnn
    shared = I.HeNormal(seed=5)
    m = fastnn.Sequential([fastnn.layers.Input((6,)), fastnn.layers.Dense(6, kernel_initializer=shared),
                           fastnn.layers.Dense(6, kernel_initializer=shared)])
    w = m.get_weights()
    assert not np.array_equal(w[0], w[2])
