"""Import, ISA dispatch, threads and cpu_info."""
import os
import subprocess
import sys

import pytest

import fastnn
from fastnn import _core


def run_python(code, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=60)


def test_cpu_info_reports_features_isa_threads_and_build():
    info = fastnn.cpu_info()
    assert info["isa"] in ("scalar", "avx2", "avx512")
    assert info["isa"] in info["supported_isas"]
    assert "scalar" in info["supported_isas"]
    assert info["num_threads"] == fastnn.get_num_threads() >= 1
    assert "-march=native" not in info["build_flags"]
    assert "-O3" in info["build_flags"]
    assert info["compiler"]
    assert set(info["features"]) >= {"avx2", "fma", "avx512f"}


def test_auto_choice_is_the_best_supported_isa():
    info = fastnn.cpu_info()
    order = ["scalar", "avx2", "avx512"]
    best = max(info["supported_isas"], key=order.index)
    if "FASTNN_ISA" not in os.environ:
        assert info["isa"] == best


def test_avx2_detected_when_cpu_has_it():
    f = fastnn.cpu_info()["features"]
    if f["avx2"] and f["fma"] and f["os_avx"]:
        assert "avx2" in fastnn.cpu_info()["supported_isas"]


def test_fastnn_isa_env_forces_a_path():
    r = run_python("import fastnn; print(fastnn.cpu_info()['isa'])", FASTNN_ISA="scalar")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "scalar"


def test_fastnn_isa_env_unknown_name_is_a_clear_error():
    r = run_python("import fastnn", FASTNN_ISA="sse9")
    assert r.returncode != 0
    assert "FASTNN_ISA" in r.stderr and "sse9" in r.stderr


def test_fastnn_isa_env_unsupported_path_is_a_clear_error():
    unsupported = [i for i in ("avx2", "avx512") if not _core.isa_supported(i)]
    if not unsupported:
        pytest.skip("this CPU supports every compiled path")
    r = run_python("import fastnn", FASTNN_ISA=unsupported[0])
    assert r.returncode != 0
    assert "does not support" in r.stderr


def test_set_and_get_num_threads():
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
        fastnn.set_num_threads(3)
        assert fastnn.get_num_threads() == 3
    finally:
        fastnn.set_num_threads(before)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError)])
def test_set_num_threads_rejects_bad_values(bad, exc):
    with pytest.raises(exc, match="n: expected"):
        fastnn.set_num_threads(bad)


def test_fastnn_num_threads_env():
    r = run_python("import fastnn; print(fastnn.get_num_threads())", FASTNN_NUM_THREADS="1")
    assert r.stdout.strip() == "1", r.stderr
    r = run_python("import fastnn", FASTNN_NUM_THREADS="zero")
    assert r.returncode != 0 and "FASTNN_NUM_THREADS" in r.stderr


def test_equal_but_distinct_dtype_objects_are_accepted():
    # a deep-copied or unpickled array may carry a dtype object that is equal
    # to, but not the same object as, NumPy's float32 singleton
    import copy
    import pickle

    import numpy as np
    from fastnn import ops
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    for y in (copy.deepcopy(x), pickle.loads(pickle.dumps(x))):
        np.testing.assert_array_equal(ops.activation("relu", y), np.maximum(x, 0))
        np.testing.assert_array_equal(ops.matmul(y, y.T), x @ x.T)
