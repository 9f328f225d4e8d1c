"""Ahead-of-time build of the LLTM extension (PyTorch C++ extension + libsimgrad).

    python examples-cpp/lltm/ext/setup.py build_ext --build-lib DIR [--build-temp TMP]

puts `lltm_simgrad_ext*.so` in DIR (or use `pip install --no-build-isolation examples-cpp/lltm/ext`).
`lltm_simgrad.build_aot()` runs exactly this, into `target/examples-cpp/lltm/aot`.

libsimgrad is found like `lltm_simgrad.simgrad_paths()` finds it: `SIMGRAD_INCLUDE_DIR` (the
directory holding simgrad.h, default `include/` of the repository) and `SIMGRAD_LIB_DIR` (the
directory holding libsimgrad.so, default the newest of `target/release` and `target/debug`; build
it with `cargo build -p simgrad-capi`). The extension records that directory as its RPATH, so it
loads without LD_LIBRARY_PATH.
"""

import os
import sys

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension, include_paths

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from lltm_simgrad import EXT_CFLAGS, simgrad_paths  # noqa: E402

include_dir, lib_dir = simgrad_paths()

setup(
    name="lltm_simgrad_ext",
    version="0.1.0",
    description="LLTM cell whose backward pass comes from Enzyme, through libsimgrad",
    ext_modules=[
        CppExtension(
            "lltm_simgrad_ext",
            [os.path.join(HERE, "lltm_ext.cpp")],
            include_dirs=[include_dir],
            library_dirs=[lib_dir],
            libraries=["simgrad"],
            # torch's headers as system headers (as torch.utils.cpp_extension.load does), so that
            # -Wall -Wextra report this extension's code, not theirs.
            extra_compile_args=EXT_CFLAGS + [f"-isystem{p}" for p in include_paths()],
            extra_link_args=[f"-Wl,-rpath,{lib_dir}"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
