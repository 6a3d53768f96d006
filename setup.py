"""Build the compiled part of pyrmsprop (everything else is in pyproject.toml).

Each SIMD target of ``src/pyrmsprop/_targets.py`` becomes a static library built from
its own wrapper file ``csrc/targets/<name>.c`` with that target's flags; the
extension ``pyrmsprop._core`` (Cython binding, dispatch, threads) gets baseline
flags only and links them all.  Targets follow the platform being built for
(``sysconfig.get_platform()``, which honours ``_PYTHON_HOST_PLATFORM``, and
``ARCHFLAGS`` on macOS), not the build machine's CPU.

The target libraries are compiled with the compiler of the interpreter's build but
not its CFLAGS (``-fwrapv`` on 3.10/3.11, ``-fno-strict-overflow`` on 3.12+, ``-g``,
...): only the flags of ``_targets.py``, the flags that choose what is built for
(``-arch``, ``-isysroot``, ``--sysroot``, ``-mmacosx-version-min``, ``--target``) and
the environment's ``CFLAGS``/``CPPFLAGS``.  So the kernels' machine code does not
depend on which CPython built them, and a compiler cache shares them between
interpreters (CI builds them once for five).

``PYRMSPROP_DEBUG_CYTHON=1`` builds with Cython's bounds checks switched on.
``PYRMSPROP_EXTRA_CFLAGS`` (split on whitespace) is appended to every C compile,
the target libraries' and the extension's, and to the extension's link: for
sanitizer builds (``tools/ci/sanitizers.sh``), e.g. ``-fsanitize=address -g``.
"""

import os
import re
import runpy
import shlex
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_clib import build_clib
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
_targets = runpy.run_path(str(HERE / "src" / "pyrmsprop" / "_targets.py"))


def build_platform() -> str:
    plat = sysconfig.get_platform()
    if plat.startswith("macosx"):
        archs = re.findall(r"-arch\s+(\S+)", os.environ.get("ARCHFLAGS", ""))
        if len(archs) > 1:
            sys.exit("pyrmsprop: build one architecture at a time (no universal2 wheels)")
        if archs:
            plat = plat.rsplit("-", 1)[0] + "-" + archs[0]
    return plat


TARGETS = _targets["targets_for"](build_platform())
EXTRA_CFLAGS = os.environ.get("PYRMSPROP_EXTRA_CFLAGS", "").split()


# flags of the interpreter's CFLAGS that say what is built for, not how: kept for the
# kernels (one-word flags and, for the two-word ones, the word after them)
_PLATFORM_FLAG = re.compile(r"(-isysroot|--sysroot(=.*)?|-arch|-mmacosx-version-min=.*|"
                            r"--target(=.*)?|-target|-m32|-m64)$")


def kernel_compiler(compiler_so: list[str]) -> list[str]:
    """The command that compiles a target library: the compiler (compiler_so's words
    up to the first flag: CC), the platform flags of the interpreter's CFLAGS, and the
    environment's CFLAGS and CPPFLAGS."""
    first = next((i for i, w in enumerate(compiler_so) if w.startswith("-")), len(compiler_so))
    cmd, words = list(compiler_so[:first]), shlex.split(sysconfig.get_config_var("CFLAGS") or "")
    i = 0
    while i < len(words):
        two = words[i] in ("-isysroot", "--sysroot", "-arch", "-target") and i + 1 < len(words)
        if _PLATFORM_FLAG.match(words[i]):
            cmd += words[i:i + 2] if two else words[i:i + 1]
        i += 2 if two else 1
    return cmd + shlex.split(os.environ.get("CFLAGS", "")) + shlex.split(
        os.environ.get("CPPFLAGS", ""))


class build_target_libs(build_clib):
    """build_clib that picks each target's flags once the compiler is known, and
    compiles the targets side by side (one compiler process per target, as many at
    once as there are CPUs: each target file holds every kernel, tens of seconds)."""

    def build_libraries(self, libraries):
        msvc = self.compiler.compiler_type == "msvc"
        if hasattr(self.compiler, "compiler_so"):   # unix-style compilers (gcc, clang)
            self.compiler.compiler_so = kernel_compiler(self.compiler.compiler_so)
        for _name, info in libraries:
            gcc_flags, msvc_flags, _macro = TARGETS[info["target"]]
            if msvc:
                info["cflags"] = _targets["KERNEL_FLAGS_MSVC"] + msvc_flags
            else:
                info["cflags"] = _targets["KERNEL_FLAGS_GCC"] + gcc_flags + ["-fPIC"]
            info["cflags"] = info["cflags"] + EXTRA_CFLAGS
        if msvc and not getattr(self.compiler, "initialized", True):
            self.compiler.initialize()   # once, before the threads share the compiler

        def compile_one(item):
            name, info = item
            objects = self.compiler.compile(
                info["sources"], output_dir=self.build_temp, macros=info.get("macros"),
                include_dirs=info.get("include_dirs"), extra_postargs=info["cflags"],
                debug=self.debug)
            return name, objects

        jobs = max(1, min(len(libraries), os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            built = list(pool.map(compile_one, libraries))
        for name, objects in built:
            self.compiler.create_static_lib(objects, name, output_dir=self.build_clib,
                                            debug=self.debug)


class build_ext_with_libs(build_ext):
    """build_ext that builds the target libraries first (also for --inplace)."""

    def run(self):
        self.run_command("build_clib")
        super().run()


libraries = [
    (
        f"prm_{name}",
        {
            "sources": [f"csrc/targets/{name}.c"],
            "include_dirs": ["csrc"],
            "depends": [str(p) for p in Path("csrc").rglob("*.[ch]")],
            "target": name,
        },
    )
    for name in TARGETS
]

macros = [(macro, "1") for (_g, _m, macro) in TARGETS.values() if macro]
link_args = []
if sys.platform.startswith("linux"):
    link_args = ["-pthread"]

debug = os.environ.get("PYRMSPROP_DEBUG_CYTHON") == "1"
ext = Extension(
    "pyrmsprop._core",
    sources=["src/pyrmsprop/_core.pyx", "csrc/dispatch.c", "csrc/threads.c"],
    include_dirs=["csrc"],
    define_macros=macros,
    extra_compile_args=EXTRA_CFLAGS,
    extra_link_args=link_args + EXTRA_CFLAGS,
    depends=["csrc/pyrmsprop.h", "csrc/prm_dispatch.h", "src/pyrmsprop/_core.pxd"],
)

setup(
    libraries=libraries,
    cmdclass={"build_clib": build_target_libs, "build_ext": build_ext_with_libs},
    ext_modules=cythonize(
        [ext],
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": False,
            "initializedcheck": debug,
            "cdivision": True,
            "freethreading_compatible": True,
            # no embedded signature: the functions are introspectable (binding=True),
            # so help() and inspect.signature already show one clean signature
            "embedsignature": False,
        },
    ),
)
