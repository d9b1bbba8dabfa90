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
