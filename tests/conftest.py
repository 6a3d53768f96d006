"""Shared fixtures.

``dtype``      np.float32 and np.float64.
``simd``       every SIMD target compiled into this build, set with ``pyrmsprop.set_simd``
               for the test (its name is the value); targets this CPU cannot run skip
               with the reason.
``n_threads``  1 and 2, set with ``pyrmsprop.set_num_threads`` (arrays below
               ``_core.get_thread_threshold()`` elements still run serially).
``rng``        a ``np.random.Generator`` seeded per test.
``torch``      the torch module; skips when torch is missing, unless the environment has
               ``PYRMSPROP_REQUIRE_TORCH=1`` (CI), where a missing torch is an error.

After every test the SIMD choice, thread count and thread threshold in use at import
are restored.  The tests (and the interpreters they start) read and write SIMD
measurements in a directory of their own, never the user's cache
(``PYRMSPROP_CACHE_DIR``).
"""

import os
import tempfile
import zlib

os.environ["PYRMSPROP_CACHE_DIR"] = tempfile.mkdtemp(prefix="pyrmsprop-tests-")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import pyrmsprop  # noqa: E402
from pyrmsprop import _core, _simd  # noqa: E402

_DEFAULTS = (_simd.snapshot(), pyrmsprop.get_num_threads(), _core.get_thread_threshold(),
             _core.hw_conversions())


@pytest.fixture(autouse=True)
def _restore_defaults():
    yield
    choice, threads, threshold, hw = _DEFAULTS
    _simd.restore(choice)
    pyrmsprop.set_num_threads(threads)
    _core.set_thread_threshold(threshold)
    _core.set_hw_conversions(hw)


@pytest.fixture(params=["hardware", "integer"])
def conversions(request):
    """16-bit conversions by the CPU's instructions where it has them (AVX-512 BF16,
    F16C: the default), or by the integer code everywhere; the same bits either way."""
    if request.param == "hardware":
        if not _core.hw_conversions(supported=True):
            pytest.skip("this CPU has no conversion instructions pyrmsprop uses")
        _core.set_hw_conversions(_core.hw_conversions(supported=True))
    else:
        _core.set_hw_conversions(())
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(params=_core.compiled_targets())
def simd(request):
    name = request.param
    if name not in pyrmsprop.simd_targets():
        pytest.skip(f"SIMD target {name!r} is compiled but this CPU/OS does not support it "
                    f"(supported: {pyrmsprop.simd_targets()})")
    pyrmsprop.set_simd(name)
    return name


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def n_threads(request):
    pyrmsprop.set_num_threads(request.param)
    return request.param


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))  # stable per test


@pytest.fixture(scope="session")
def torch():
    if os.environ.get("PYRMSPROP_REQUIRE_TORCH") == "1":
        try:
            import torch
        except ImportError as exc:
            pytest.fail(f"PYRMSPROP_REQUIRE_TORCH=1 but torch cannot be imported: {exc}")
        return torch
    return pytest.importorskip("torch")
