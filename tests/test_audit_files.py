"""Audit of the ways out (files written, exports) with hostile conditions (defects found by the audit)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn
from fastnn import layers as L

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))  # the fastnn under test

# A child process whose files may grow to LIMIT bytes at most (RLIMIT_FSIZE): a write past it
# fails with EFBIG, as a full disk fails a write with ENOSPC.
_FULL_DISK = textwrap.dedent("""
    import os, resource, signal, sys
    import numpy as np
    import fastnn
    from fastnn import layers as L
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    m = fastnn.Sequential([fastnn.Input((8,)), L.Dense(64, activation="relu"), L.Dense(3)])
    target, how = sys.argv[1], sys.argv[2]
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))
    try:
        if how == "onnx":
            fastnn.export.export_onnx(m, target)
        elif how == "predict":
            from fastnn import cli_predict
            cli_predict.write_outputs(target, np.ones((500, 3), np.float32))
        else:
            m.save(target)
    except OSError as e:
        print("refused", e.errno)
        sys.exit(0)
    print("written")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE as a full disk: Linux")
@pytest.mark.parametrize("how, name", [("onnx", "m.onnx"), ("predict", "p.npz"), ("predict", "p.csv"),
                                       ("save", "m.npz")])
def test_a_write_that_fails_midway_leaves_the_previous_file_intact(tmp_path, how, name):
    # export_onnx and `fastnn predict -o` wrote in place: a full disk left a torn file
    target = tmp_path / name
    target.write_bytes(b"previous contents")
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    r = subprocess.run([sys.executable, "-c", _FULL_DISK, str(target), how], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("refused"), r.stdout
    assert target.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == [name]  # no temporary left behind


def test_float64_layer_normalization_exports_exactly():
    # the ONNX op's epsilon is a float32 attribute: 1e-3 became 1.0000000475e-3 in the double graph
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m = fastnn.Sequential([fastnn.Input((6,)), L.LayerNormalization(), L.Dense(3)], dtype="float64")
    x = np.random.default_rng(0).normal(size=(9, 6)) * 5 + 3
    s = ort.InferenceSession(fastnn.export.to_onnx(m).SerializeToString(), providers=["CPUExecutionProvider"])
    got = s.run(None, {"input": x})[0]
    np.testing.assert_allclose(got, m.predict(x, verbose=0), rtol=1e-13, atol=1e-13)
