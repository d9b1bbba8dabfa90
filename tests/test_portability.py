"""Portability: the baseline code runs on any x86-64 CPU, and every ISA path the
machine supports gives the same results.

Only the per-ISA translation units (generated/<family>_avx2.cpp and _avx512.cpp,
written by CMakeLists.txt) are compiled with AVX flags; their
code lives in the namespaces fastnn::...::avx2 / ::avx512 and runs only after
CPUID says so. Anything else that uses an AVX instruction (a VEX/EVEX-encoded
instruction, a ymm/zmm or mask register) would crash with SIGILL on an older
CPU. The classic way this happens is an inline function or template
instantiated in an AVX translation unit and picked by the linker for every
caller, so the scan covers both the baseline object files and every function
of the linked extension.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import fastnn
from fastnn import _core, ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUPPORTED_ISAS = [name for name in ("scalar", "avx2", "avx512") if _core.isa_supported(name)]
OBJDUMP = shutil.which("objdump")
X86 = "x86" in os.uname().machine or os.uname().machine in ("amd64", "AMD64")

pytestmark = pytest.mark.skipif(not (OBJDUMP and X86), reason="needs objdump on x86-64")

FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
INSN = re.compile(r"^\s*[0-9a-f]+:\s+([a-z][a-z0-9.]*)\s*(.*)$")
AVX_OPERAND = re.compile(r"%[yz]mm\d+|%k[0-7]\b|\{%k[0-7]\}")


def avx_instruction(mnemonic, operands):
    """True for an instruction that needs AVX or later: VEX/EVEX mnemonics (v...) and
    ymm/zmm/mask-register operands. (SSE/SSE2 are baseline x86-64.)"""
    if AVX_OPERAND.search(operands):
        return True
    return mnemonic.startswith("v") and mnemonic not in ("verr", "verw")


def avx_functions(path):
    """{function: first offending instruction} for every function of `path` using AVX."""
    out = subprocess.run([OBJDUMP, "-d", "--no-show-raw-insn", "-C", "-w", path], capture_output=True, text=True,
                         check=True).stdout
    found, func = {}, None
    for line in out.splitlines():
        m = FUNC.match(line)
        if m:
            func = m.group(1)
            continue
        m = INSN.match(line)
        if m and func and func not in found and avx_instruction(m.group(1), m.group(2)):
            found[func] = line.strip()
    return found


def isa_specific(func):
    return "::avx2::" in func or "::avx512::" in func


def baseline_objects():
    objs = []
    for build in sorted(glob.glob(os.path.join(ROOT, "build*"))):
        # csrc/fastnn's objects, and the per-ISA ones CMake generates (generated/<family>_<isa>.cpp)
        for o in glob.glob(os.path.join(build, "**", "csrc", "fastnn", "**", "*.o"), recursive=True) + \
                glob.glob(os.path.join(build, "**", "generated", "*.o"), recursive=True):
            if not re.search(r"_(avx2|avx512)\.cpp\.o$", o):
                objs.append(o)
    return objs


def test_baseline_objects_use_no_avx():
    """Every object of csrc/fastnn that is not *_avx2 / *_avx512 is free of AVX instructions."""
    objs = baseline_objects()
    if not objs:
        pytest.skip("no build directory with object files (run tools/devbuild.sh)")
    bad = {os.path.relpath(o, ROOT): f for o in objs if (f := avx_functions(o))}
    assert not bad, "AVX instructions in baseline objects:\n" + "\n".join(
        f"{o}: {fn} :: {insn}" for o, fs in bad.items() for fn, insn in list(fs.items())[:3])


def test_linked_extension_uses_avx_only_in_isa_namespaces():
    """In the linked _core: only functions of the avx2/avx512 namespaces use AVX (so no inline
    function compiled with AVX flags was merged into baseline callers)."""
    so = _core.__file__
    found = avx_functions(so)
    assert any(isa_specific(f) for f in found) or not {"avx2", "avx512"} & set(_core.compiled_isas), \
        "no AVX code found at all: is the scan working?"
    leaked = {f: insn for f, insn in found.items() if not isa_specific(f)}
    assert not leaked, "AVX instructions outside the ISA namespaces:\n" + "\n".join(
        f"{f} :: {insn}" for f, insn in list(leaked.items())[:20])


def test_scan_detects_avx(tmp_path):
    """The scanner itself: an object built with -mavx2 is flagged, a baseline one is not."""
    cxx = shutil.which("c++") or shutil.which("g++")
    if not cxx:
        pytest.skip("no C++ compiler")
    src = tmp_path / "f.cpp"
    src.write_text("void add(float* a, const float* b, int n) { for (int i = 0; i < n; ++i) a[i] += b[i]; }\n")
    for flags, expect in ((["-O3"], False), (["-O3", "-mavx2"], True)):
        obj = tmp_path / ("avx.o" if expect else "base.o")
        subprocess.run([cxx, "-c", *flags, str(src), "-o", str(obj)], check=True)
        assert bool(avx_functions(str(obj))) == expect, flags


# ----------------------------------------------------------------------------
# every supported path gives the same results
# ----------------------------------------------------------------------------


def _all_ops(dtype):
    r = np.random.default_rng(11)
    f = lambda *s: r.standard_normal(s).astype(dtype)
    a, b, bias, x = f(37, 29), f(29, 45), f(45), f(33, 21)
    out = {}
    out["matmul"] = ops.matmul(a, b, bias=bias, activation="relu")
    out["matmul_t"] = ops.matmul(b, a, trans_a=True, trans_b=True, alpha=0.5)
    for name in ops.ACTIVATIONS:
        out[f"act_{name}"] = ops.activation(name, x)
        out[f"grad_{name}"] = ops.activation_grad(name, x, x=x)
    out["softmax"], out["log_softmax"] = ops.softmax(x), ops.log_softmax(x)
    rm, rv = np.zeros(21, dtype), np.ones(21, dtype)
    y, mean, invstd = ops.batchnorm_forward(x, x[0], x[1], rm, rv)
    out.update(bn_y=y, bn_mean=mean, bn_invstd=invstd, bn_rm=rm, bn_rv=rv)
    for i, g in enumerate(ops.batchnorm_backward(x, x, x[0], mean, invstd)):
        out[f"bn_back{i}"] = g
    out["xent"] = ops.softmax_cross_entropy(x, r.integers(0, 21, 33))
    out["bce"] = ops.binary_cross_entropy_with_logits(x, (x > 0).astype(dtype))
    out["mse"] = ops.mean_squared_error(x, x * 0.3)
    p, m, v = f(1001), np.zeros(1001, dtype), np.zeros(1001, dtype)
    ops.adam_update(p, x.reshape(-1)[:1001] if x.size >= 1001 else f(1001), m, v, lr=0.01, step=3)
    out.update(adam_p=p, adam_m=m, adam_v=v)
    out["dropout"] = ops.dropout(x, 0.4, seed=3)
    out["colsum"] = ops.column_sum(x)
    return out


def _flat(v):
    if isinstance(v, tuple):
        return np.concatenate([np.atleast_1d(np.asarray(e, dtype=np.float64)).ravel() for e in v])
    return np.asarray(v, dtype=np.float64).ravel()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_supported_path_gives_the_same_results(dtype):
    """scalar, avx2 and avx512 (those the CPU has) agree to float rounding on every op:
    the same polynomial approximations, only the summation order differs."""
    if len(SUPPORTED_ISAS) < 2:
        pytest.skip("only one ISA path on this machine")
    before = _core.active_isa()
    results = {}
    try:
        for isa in SUPPORTED_ISAS:
            _core.select_isa(isa)
            results[isa] = _all_ops(dtype)
    finally:
        _core.select_isa(before)
    # atol relative to the output's magnitude: batchnorm_backward's dx is a difference of
    # O(1) terms, so its small elements carry O(eps) absolute rounding
    rtol, atol = (2e-5, 2e-5) if dtype == np.float32 else (1e-12, 1e-13)
    base = results[SUPPORTED_ISAS[0]]
    for isa in SUPPORTED_ISAS[1:]:
        for k, v in base.items():
            want = _flat(v)
            np.testing.assert_allclose(_flat(results[isa][k]), want, rtol=rtol,
                                       atol=atol * max(1.0, float(np.abs(want).max(initial=0))),
                                       err_msg=f"{k}: {isa} vs {SUPPORTED_ISAS[0]}")
        # masks are exact on every path
        np.testing.assert_array_equal(results[isa]["dropout"][1], base["dropout"][1])


def test_fastnn_isa_environment_variable_selects_the_path():
    """FASTNN_ISA=scalar forces the scalar path at import (how the whole suite runs scalar)."""
    env = dict(os.environ, FASTNN_ISA="scalar",
               PYTHONPATH=os.pathsep.join(p for p in (os.path.dirname(fastnn.__path__[0]),
                                                      os.environ.get("PYTHONPATH")) if p))
    r = subprocess.run([os.sys.executable, "-c", "import fastnn; print(fastnn.cpu_info()['isa'])"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "scalar"
