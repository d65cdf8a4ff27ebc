"""Compile and link flags for a C or Fortran host built against the installed rsoil_couple.

``rsoil-couple config --cflags | --fflags | --libs | --flibs | --prefix | --cmake-dir |
--pkgconfig-dir`` prints one line, like ``nf-config``; for example ::

    gfortran $(rsoil-couple config --fflags) my_host.f90 $(rsoil-couple config --flibs)
    cc $(rsoil-couple config --cflags) my_host.c $(rsoil-couple config --libs)
    cmake -Drsoil_couple_DIR=$(rsoil-couple config --cmake-dir) ...      # find_package(rsoil_couple CONFIG)
    PKG_CONFIG_PATH=$(rsoil-couple config --pkgconfig-dir) pkg-config --cflags --libs rsoil_couple_f

The installed package holds ``lib/librsoil_core.so`` (C API), ``lib/librsoil_couple_f.so`` (Fortran
shim), ``include/rsoil_couple.h`` and ``include/rsoil_couple_mod.mod`` (gfortran module files are
specific to the compiler's module version: build the host with the gfortran the package was built
with). The link flags carry an RPATH to that ``lib`` folder, so the host runs without
``LD_LIBRARY_PATH``; ``librsoil_core.so`` finds libtorch through its own RUNPATH.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["prefix", "cflags", "fflags", "libs", "flibs", "cmake_dir", "pkgconfig_dir"]

FLAGS = ("cflags", "fflags", "libs", "flibs", "prefix", "cmake_dir", "pkgconfig_dir")


def prefix() -> Path:
    """The installed package folder (holds ``lib/`` and ``include/``)."""
    return Path(__file__).resolve().parents[1]


def _dir(name: str, must_hold: str) -> Path:
    d = prefix() / name
    if not (d / must_hold).exists():
        raise FileNotFoundError(f"{d / must_hold}: not found; rsoil_couple's compiled parts are not "
                                "installed here (pip install --no-build-isolation . builds them)")
    return d


def cflags() -> str:
    """Compiler flags of a C host: the folder of ``rsoil_couple.h``."""
    return f"-I{_dir('include', 'rsoil_couple.h')}"


def fflags() -> str:
    """Compiler flags of a Fortran host: the folder of ``rsoil_couple_mod.mod``."""
    return f"-I{_dir('include', 'rsoil_couple_mod.mod')}"


def libs() -> str:
    """Linker flags of a C host: ``librsoil_core`` with an RPATH to its folder."""
    lib = _dir("lib", "librsoil_core.so")
    return f"-L{lib} -Wl,-rpath,{lib} -lrsoil_core"


def flibs() -> str:
    """Linker flags of a Fortran host: the shim ``librsoil_couple_f`` and ``librsoil_core``."""
    lib = _dir("lib", "librsoil_couple_f.so")
    return f"-L{lib} -Wl,-rpath,{lib} -lrsoil_couple_f -lrsoil_core"


def cmake_dir() -> Path:
    """The folder of ``rsoil_coupleConfig.cmake`` (``find_package(rsoil_couple CONFIG)``)."""
    return _dir("lib/cmake/rsoil_couple", "rsoil_coupleConfig.cmake")


def pkgconfig_dir() -> Path:
    """The folder of ``rsoil_couple.pc`` and ``rsoil_couple_f.pc`` (for ``PKG_CONFIG_PATH``)."""
    return _dir("lib/pkgconfig", "rsoil_couple.pc")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--cflags", action="store_true", help="C compiler flags (include folder)")
    group.add_argument("--fflags", action="store_true", help="Fortran compiler flags (.mod folder)")
    group.add_argument("--libs", action="store_true", help="C linker flags (-lrsoil_core, RPATH)")
    group.add_argument("--flibs", action="store_true",
                       help="Fortran linker flags (-lrsoil_couple_f -lrsoil_core, RPATH)")
    group.add_argument("--prefix", action="store_true", help="the installed package folder")
    group.add_argument("--cmake-dir", action="store_true",
                       help="folder of rsoil_coupleConfig.cmake (-Drsoil_couple_DIR=...)")
    group.add_argument("--pkgconfig-dir", action="store_true",
                       help="folder of rsoil_couple.pc and rsoil_couple_f.pc (PKG_CONFIG_PATH)")


def run(args: argparse.Namespace) -> int:
    name = next(f for f in FLAGS if getattr(args, f))
    print(prefix() if name == "prefix" else globals()[name]())
    return 0
