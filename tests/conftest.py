"""Shared fixtures: run tests under every ISA path the machine supports, and
with 1 and 2 threads."""
import pytest

import fastnn
from fastnn import _core

SUPPORTED_ISAS = [name for name in ("scalar", "avx2", "avx512") if _core.isa_supported(name)]


@pytest.fixture(params=SUPPORTED_ISAS)
def isa(request):
    """Forces one ISA path for the test, then restores the previous one."""
    before = _core.active_isa()
    _core.select_isa(request.param)
    yield request.param
    _core.select_isa(before)


# bfloat16 products: the fallback (operands rounded, fp32 kernels) on every ISA, and the
# AVX512-BF16 kernel where the CPU has it
BF16_PATHS = [(isa, "fallback") for isa in SUPPORTED_ISAS]
if _core.bf16_kernel_available():
    BF16_PATHS.append(("avx512", "avx512_bf16"))


@pytest.fixture(params=BF16_PATHS, ids=lambda p: f"{p[0]}-{p[1]}")
def bf16_path(request):
    """Forces one ISA and one bf16 implementation, checks it is the one in use, restores both."""
    isa, kernel = request.param
    before = _core.active_isa()
    _core.select_isa(isa)
    _core.select_bf16_kernel(kernel)
    assert _core.bf16_kernel() == kernel
    yield request.param
    _core.select_bf16_kernel("auto")
    _core.select_isa(before)


@pytest.fixture(params=[1, 2])
def threads(request):
    """Runs the test with fastnn using 1, then 2 threads."""
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(request.param)
    yield request.param
    fastnn.set_num_threads(before)


@pytest.fixture
def isa_threads(isa, threads):
    """Every supported ISA path crossed with 1 and 2 threads."""
    return isa, threads


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer tests (run by CI, skipped with -m 'not slow')")
