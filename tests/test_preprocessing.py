import numpy as np
import pytest

from fastnn.preprocessing import PCA, ZCA, StandardScaler, one_hot


@pytest.fixture
def correlated():
    rng = np.random.default_rng(0)
    mix = np.array([[3.0, 1.0, 0.0, 0.5], [0.0, 2.0, 0.3, 0.0],
                    [0.0, 0.0, 0.5, 0.1], [0.2, 0.0, 0.0, 0.05]])
    return rng.normal(size=(2000, 4)) @ mix + np.array([5.0, -2.0, 0.0, 1.0])


# ------------------------------------------------------------- StandardScaler

def test_scaler_statistics_come_from_the_training_set_only():
    rng = np.random.default_rng(1)
    x_train = rng.normal(3.0, 2.0, size=(5000, 3))
    x_test = rng.normal(-7.0, 9.0, size=(100, 3))
    scaler = StandardScaler().fit(x_train)
    np.testing.assert_allclose(scaler.mean_, x_train.mean(0))
    np.testing.assert_allclose(scaler.scale_, x_train.std(0))
    z = scaler.transform(x_test)
    # the test set is mapped with the *training* statistics, not its own
    np.testing.assert_allclose(z, (x_test - x_train.mean(0)) / x_train.std(0), rtol=1e-5)
    assert abs(z.mean()) > 1.0


def test_scaler_output_of_training_set_has_zero_mean_unit_std():
    x = np.random.default_rng(2).uniform(0, 255, size=(300, 28, 28))
    z = StandardScaler().fit_transform(x)
    assert z.shape == (300, 28, 28) and z.dtype == np.float32
    np.testing.assert_allclose(z.reshape(300, -1).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.reshape(300, -1).std(0), 1, atol=1e-4)


def test_scaler_maps_constant_feature_to_zero_without_nan():
    x = np.column_stack([np.ones(10), np.arange(10.0)])
    z = StandardScaler().fit_transform(x)
    assert np.all(np.isfinite(z)) and np.all(z[:, 0] == 0)


def test_scaler_global_mode_uses_one_mean_and_std():
    x = np.array([[0.0, 4.0], [2.0, 6.0]])
    s = StandardScaler(per_feature=False).fit(x)
    assert s.mean_.shape == () and s.mean_ == 3.0
    np.testing.assert_allclose(s.scale_, x.std())


def test_scaler_state_round_trips_through_npz(tmp_path):
    x = np.random.default_rng(3).normal(size=(50, 6))
    s = StandardScaler().fit(x)
    s.save(tmp_path / "scaler.npz")
    s2 = StandardScaler.load(tmp_path / "scaler.npz")
    np.testing.assert_array_equal(s.transform(x), s2.transform(x))
    s3 = StandardScaler().set_state(s.get_state())
    np.testing.assert_array_equal(s.inverse_transform(s.transform(x)),
                                  s3.inverse_transform(s3.transform(x)))


def test_scaler_rejects_wrong_feature_count_and_unfitted_use():
    with pytest.raises(RuntimeError, match="not fitted"):
        StandardScaler().transform(np.zeros((2, 3)))
    s = StandardScaler().fit(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"x: expected trailing shape \(3,\)"):
        s.transform(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="x: expected shape"):
        s.fit(np.zeros(5))
    with pytest.raises(TypeError, match="x: expected a numeric array"):
        s.fit(np.array([["a", "b"]]))


# ------------------------------------------------------------- PCA / ZCA

def test_pca_whitening_gives_identity_covariance(correlated):
    pca = PCA(n_components=3, whiten=True, eps=0.0).fit(correlated)
    z = pca.transform(correlated).astype(np.float64)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(z.T @ z / len(z), np.eye(3), atol=1e-5)


def test_pca_without_whitening_gives_diagonal_covariance_of_eigenvalues(correlated):
    pca = PCA().fit(correlated)
    z = pca.transform(correlated).astype(np.float64)
    cov = z.T @ z / len(z)
    np.testing.assert_allclose(cov, np.diag(pca.explained_variance_), atol=1e-3, rtol=1e-4)
    assert np.all(np.diff(pca.explained_variance_) <= 0)
    np.testing.assert_allclose(pca.explained_variance_,
                               np.sort(np.linalg.eigvalsh(np.cov(correlated.T, bias=True)))[::-1],
                               rtol=1e-6)


def test_pca_fraction_keeps_enough_components(correlated):
    full = PCA().fit(correlated)
    want = int(np.searchsorted(np.cumsum(full.explained_variance_ratio_), 0.95) + 1)
    assert PCA(0.95).fit(correlated).n_components_ == want
    assert want < 4


def test_pca_is_fit_on_train_and_applied_to_test(correlated):
    train, test = correlated[:1500], correlated[1500:]
    pca = PCA(2).fit(train)
    z = pca.transform(test)
    np.testing.assert_allclose(z, (test - train.mean(0)) @ pca.components_.T, rtol=1e-4, atol=1e-4)


def test_pca_inverse_of_all_components_is_exact(correlated):
    pca = PCA(whiten=True).fit(correlated)
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(correlated)), correlated,
                               rtol=1e-4, atol=1e-4)


def test_pca_state_round_trip(tmp_path, correlated):
    pca = PCA(0.9, whiten=True).fit(correlated)
    pca.save(tmp_path / "pca.npz")
    back = PCA.load(tmp_path / "pca.npz")
    assert back.whiten and back.n_components == 0.9
    np.testing.assert_array_equal(back.transform(correlated), pca.transform(correlated))


def test_zca_whitening_gives_identity_covariance_and_keeps_shape():
    rng = np.random.default_rng(4)
    base = rng.normal(size=(3000, 2, 3))
    x = base.copy()
    x[:, 1] += 0.8 * base[:, 0]  # correlate the rows of each "image"
    zca = ZCA(eps=0.0).fit(x)
    z = zca.transform(x)
    assert z.shape == x.shape
    flat = z.reshape(len(z), -1).astype(np.float64)
    np.testing.assert_allclose(flat.T @ flat / len(flat), np.eye(6), atol=1e-4)


def test_zca_is_the_symmetric_whitening(correlated):
    zca = ZCA(eps=0.0).fit(correlated)
    # the whitening matrix W = U S^-1/2 U^T is symmetric: z = (x - mean) W
    w = zca.transform(zca.mean_[None] + np.eye(4)).astype(np.float64)
    np.testing.assert_allclose(w, w.T, atol=1e-4)


def test_pca_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="n_components"):
        PCA(0)
    with pytest.raises(ValueError, match="n_components"):
        PCA(1.5)
    with pytest.raises(TypeError, match="n_components"):
        PCA("3")
    with pytest.raises(ValueError, match="eps"):
        PCA(eps=-1)
    with pytest.raises(ValueError, match="n_components"):
        PCA(10).fit(np.zeros((5, 3)))


# ------------------------------------------------------------- one_hot

def test_one_hot_sets_one_per_row():
    y = np.array([3, 0, 2])
    oh = one_hot(y, 4)
    assert oh.dtype == np.float32
    np.testing.assert_array_equal(oh.argmax(1), y)
    np.testing.assert_array_equal(oh.sum(1), 1)


def test_one_hot_infers_num_classes_and_rejects_out_of_range():
    assert one_hot([0, 4]).shape == (2, 5)
    with pytest.raises(ValueError, match="labels"):
        one_hot([0, 5], 5)
    with pytest.raises(ValueError, match="labels"):
        one_hot([[0, 1]])
    with pytest.raises(TypeError, match="labels"):
        one_hot([0.5, 1.0])


# -- the notes' per-sample normalization and per-channel mean subtraction (issue 12) --------
def test_per_sample_normalize_matches_numpy():
    from fastnn.preprocessing import per_sample_normalize
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 5.0, size=(7, 4, 5))
    f = x.reshape(7, -1)
    want = (f - f.mean(1, keepdims=True)) / np.sqrt(f.var(1, keepdims=True) + 1e-8)
    got = per_sample_normalize(x, dtype=np.float64)
    assert got.shape == x.shape
    np.testing.assert_allclose(got.reshape(7, -1), want, rtol=1e-12)
    np.testing.assert_allclose(per_sample_normalize(x, scale="l2", dtype=np.float64).reshape(7, -1),
                               f / np.linalg.norm(f, axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(per_sample_normalize(x, scale=None).reshape(7, -1),
                               f - f.mean(1, keepdims=True), rtol=1e-5, atol=1e-5)
    # each sample alone: normalizing a subset gives the same rows
    np.testing.assert_array_equal(per_sample_normalize(x[2:4]), per_sample_normalize(x)[2:4])
    with pytest.raises(ValueError, match="scale"):
        per_sample_normalize(x, scale="max")
    with pytest.raises(ValueError, match="eps"):
        per_sample_normalize(np.ones((2, 3)), eps=0)


@pytest.mark.parametrize("axis", [-1, 1])
def test_channel_mean_subtraction_fits_on_training_data_only(axis, tmp_path):
    from fastnn.preprocessing import ChannelMeanSubtraction
    rng = np.random.default_rng(1)
    shape = (20, 6, 6, 3) if axis == -1 else (20, 3, 6, 6)
    train = rng.normal(size=shape) + (np.array([1.0, -2.0, 5.0]).reshape((1, 1, 1, 3) if axis == -1
                                                                        else (1, 3, 1, 1)))
    test = rng.normal(size=(4,) + shape[1:])
    red = (0, 1, 2) if axis == -1 else (0, 2, 3)
    mean = train.mean(axis=red, keepdims=True)
    std = train.std(axis=red, keepdims=True)
    t = ChannelMeanSubtraction(channel_axis=axis, dtype=np.float64).fit(train)
    np.testing.assert_allclose(t.mean_, mean.reshape(-1), rtol=1e-12)
    np.testing.assert_allclose(t.transform(test), test - mean, rtol=1e-12)  # the training mean
    np.testing.assert_allclose(t.inverse_transform(t.transform(test)), test, rtol=1e-12, atol=1e-12)
    s = ChannelMeanSubtraction(channel_axis=axis, with_std=True, dtype=np.float64).fit(train)
    np.testing.assert_allclose(s.transform(test), (test - mean) / std, rtol=1e-12)
    t.save(tmp_path / "c.npz")
    back = ChannelMeanSubtraction.load(tmp_path / "c.npz")
    assert back.channel_axis == axis
    np.testing.assert_allclose(back.transform(test), t.transform(test).astype(np.float32), rtol=1e-6)
    with pytest.raises(ValueError, match="trailing shape"):
        t.transform(test[:, :2])
    with pytest.raises(ValueError, match="channel_axis"):
        ChannelMeanSubtraction(channel_axis=0).fit(train)
