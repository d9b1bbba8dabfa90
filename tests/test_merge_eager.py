"""Merge layers called on lists of NumPy arrays (Keras 3's eager call): the merged array,
NumPy's result; refusals name the argument and leave the layer as it was."""
import numpy as np
import pytest

from fastnn.layers import Add, Average, Concatenate, Input, Maximum, Multiply, Subtract

RNG = np.random.default_rng(0)
A = RNG.standard_normal((4, 3)).astype(np.float32)
B = RNG.standard_normal((4, 3)).astype(np.float32)
C = RNG.standard_normal((4, 3)).astype(np.float32)


@pytest.mark.parametrize("layer, want", [
    (Add, lambda a, b, c: a + b + c),
    (Multiply, lambda a, b, c: a * b * c),
    (Average, lambda a, b, c: (a + b + c) / 3),
    (Maximum, lambda a, b, c: np.maximum(np.maximum(a, b), c)),
    (Concatenate, lambda a, b, c: np.concatenate([a, b, c], axis=-1)),
])
def test_merges_equal_numpy(layer, want):
    got = layer()([A, B, C])
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_allclose(got, want(A, B, C), rtol=1e-6, atol=1e-7)


def test_subtract_and_concatenate_axis():
    np.testing.assert_array_equal(Subtract()([A, B]), A - B)
    a3, b3 = A.reshape(4, 3, 1), B.reshape(4, 3, 1)
    np.testing.assert_array_equal(Concatenate(axis=1)([a3, b3]), np.concatenate([a3, b3], axis=1))


def test_result_is_a_new_array_each_call():
    layer = Add()
    first = layer([A, B])
    second = layer([C, C])
    np.testing.assert_array_equal(first, A + B)  # not overwritten by the second call
    np.testing.assert_array_equal(second, C + C)


def test_refused_inputs_leave_the_layer_unbuilt():
    layer = Add()
    with pytest.raises(ValueError, match="one shape"):
        layer([A, np.ones((4, 5), np.float32)])
    assert not layer.built and layer.input_shape is None and layer.output_shape is None
    with pytest.raises(ValueError, match="^inputs: .*one batch size, got 4, 2"):
        layer([A, B[:2]])
    with pytest.raises(ValueError, match="needs at least 2 inputs, got 1"):
        layer([A])
    assert not layer.built
    np.testing.assert_array_equal(layer([A, B]), A + B)  # then works
    with pytest.raises(ValueError, match="built for inputs of shapes"):
        layer([np.ones((4, 5), np.float32)] * 2)
    with pytest.raises(ValueError, match="NaN or infinity"):
        layer([A, np.full_like(B, np.nan)])
    with pytest.raises(TypeError, match="training: expected True, False or None"):
        layer([A, B], training="yes")


def test_symbolic_calls_still_build_graphs():
    x, y = Input(3), Input(3)
    out = Add()([x, y])
    assert out.shape == (3,)
    with pytest.raises(TypeError, match="expected outputs of Input"):
        Add()([x, A])
    with pytest.raises(TypeError, match="training= and mask= are taken on arrays only"):
        Add()([x, y], training=True)
