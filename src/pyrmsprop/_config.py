"""show_config(): what this build is and what it runs on."""

from __future__ import annotations

import platform
import sys
import sysconfig

from pyrmsprop import _core, _simd
from pyrmsprop._targets import KERNEL_FLAGS_GCC, KERNEL_FLAGS_MSVC, targets_for
from pyrmsprop._version import __version__


def _config() -> dict:
    msvc = _core.compiler().startswith("msvc")
    table = targets_for(sysconfig.get_platform())
    flags = {}
    for name in _core.compiled_targets():
        key = "baseline" if name == "neon" else name
        gcc, msvc_flags, _ = table.get(key, ([], [], None))
        base = KERNEL_FLAGS_MSVC if msvc else KERNEL_FLAGS_GCC
        flags[name] = " ".join(base + (msvc_flags if msvc else gcc))
    return {
        "pyrmsprop": {"version": __version__},
        "build": {
            "compiler": _core.compiler(),
            "targets compiled": _core.compiled_targets(),
            "kernel flags": flags,
        },
        "machine": {
            "platform": sysconfig.get_platform(),
            "processor": platform.processor() or platform.machine(),
            **({"cpu": cpu} if (cpu := _core.cpu_name()) else {}),
            "python": sys.version.split()[0],
        },
        "simd": {
            "supported here": _core.simd_targets(),
            "in use": _simd.simd_target(),
            "by rule": {rule: "/".join(dict.fromkeys(per.values()))
                        for rule, per in _simd.simd_by_rule().items()},
            "chosen by": _simd.simd_measurement()["mode"],
            "best": _core.best_simd_target(),
            # CPU instructions converting 16-bit storage (same bits as the integer code)
            "hardware conversions": list(_core.hw_conversions()) or "none",
            # why a compiled target is not dispatched here (macOS's AVX-512 rule), if one is not
            **({"note": note} if (note := _core.target_note()) else {}),
        },
        "threads": {
            "mode": _core.thread_mode(),
            "OpenMP": "not used",
            "threads": _core.get_num_threads(),
            "serial below (float32-EMA elements)": _core.get_thread_threshold(),
            "split from (elements, float32/float64)": {
                rule: [_core.split_elements(rule, dt) for dt in ("float32", "float64")]
                for rule in ("ema", "sgd", "rmsprop", "adam")},
            "chunk (elements)": _core.chunk_elements(),
        },
    }


def show_config(mode: str = "stdout") -> dict | None:
    """Print (``mode='stdout'``) or return (``mode='dicts'``) the build and run-time
    configuration: version, compiler, kernel flags per SIMD target, the targets
    this CPU supports and the one in use, and the threading mode and count."""
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    cfg = _config()
    if mode == "dicts":
        return cfg
    for section, items in cfg.items():
        print(f"{section}:")
        for key, value in items.items():
            if isinstance(value, dict):
                print(f"  {key}:")
                for k, v in value.items():
                    print(f"    {k}: {v}")
            else:
                print(f"  {key}: {value}")
    return None
