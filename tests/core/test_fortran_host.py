"""The installed Fortran shim: `rsoil-couple config` flags (and the installed pkg-config file) build a
user's host, which then agrees with the Python Coupler.

The CLM-like host itself is tested by CTest (fortran_shim/CMakeLists.txt).
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from rsoil_couple.core import buildinfo

pytestmark = pytest.mark.skipif(shutil.which("gfortran") is None, reason="no gfortran")


def config(flag: str, cwd) -> str:
    """`rsoil-couple config <flag>` of the installed package (cwd away from the source tree)."""
    p = subprocess.run([sys.executable, "-m", "rsoil_couple.cli", "config", flag], cwd=cwd,
                       capture_output=True, text=True, check=True)
    return p.stdout.strip()


@pytest.fixture(scope="module")
def installed():
    if not (buildinfo.prefix() / "lib" / "librsoil_couple_f.so").is_file():
        pytest.skip(f"the Fortran shim is not installed in {buildinfo.prefix()} "
                    "(pip install --no-build-isolation . with gfortran present)")
    return buildinfo.prefix()


def test_config_prints_installed_folders(installed, tmp_path):
    assert config("--prefix", tmp_path) == str(installed)
    assert config("--fflags", tmp_path) == f"-I{installed / 'include'}"
    assert (installed / "include" / "rsoil_couple_mod.mod").is_file()
    assert config("--cflags", tmp_path) == f"-I{installed / 'include'}"
    lib = installed / "lib"
    assert config("--flibs", tmp_path) == f"-L{lib} -Wl,-rpath,{lib} -lrsoil_couple_f -lrsoil_core"
    assert config("--libs", tmp_path) == f"-L{lib} -Wl,-rpath,{lib} -lrsoil_core"
    assert config("--cmake-dir", tmp_path) == str(lib / "cmake" / "rsoil_couple")
    assert (lib / "cmake" / "rsoil_couple" / "rsoil_coupleConfig.cmake").is_file()
    assert config("--pkgconfig-dir", tmp_path) == str(lib / "pkgconfig")
    assert (lib / "pkgconfig" / "rsoil_couple_f.pc").is_file()


@pytest.mark.skipif(shutil.which("pkg-config") is None, reason="no pkg-config")
def test_minimal_host_built_with_pkg_config_runs(installed, repo_root, model_24h, tmp_path):
    """The installed rsoil_couple_f.pc builds minimal_host.f90 with one command line; it runs without
    LD_LIBRARY_PATH and keeps Q10 in its masked column 3 (CTest package_* test the same from a
    build tree installed into a temporary prefix)."""
    import os
    env = dict(os.environ, PKG_CONFIG_PATH=config("--pkgconfig-dir", tmp_path))
    env.pop("LD_LIBRARY_PATH", None)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "rsoil_couple_f"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    exe = tmp_path / "minimal_host"
    subprocess.run(["gfortran", str(repo_root / "fortran_shim" / "examples" / "minimal_host.f90"),
                    "-o", str(exe)] + flags, check=True, capture_output=True, text=True)
    p = subprocess.run([str(exe), str(model_24h[0])], capture_output=True, text=True, check=True, env=env)
    status = [int(line.split()[2]) for line in p.stdout.splitlines() if line.strip()]
    assert status[2] == 5 and all(s <= 1 for s in status[:2] + status[3:])


def test_config_needs_one_flag(tmp_path):
    p = subprocess.run([sys.executable, "-m", "rsoil_couple.cli", "config"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert p.returncode == 2 and "one of the arguments --cflags" in p.stderr


def test_minimal_host_built_with_config_flags_matches_python(installed, repo_root, model_24h, tmp_path):
    """fortran_shim/examples/minimal_host.f90, compiled and linked only with the printed flags,
    gives the Python Coupler's numbers for the same drivers (and keeps Q10 in its masked column)."""
    from rsoil_couple import Coupler

    exe = tmp_path / "minimal_host"
    cmd = (["gfortran"] + config("--fflags", tmp_path).split()
           + [str(repo_root / "fortran_shim" / "examples" / "minimal_host.f90"), "-o", str(exe)]
           + config("--flibs", tmp_path).split())
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    model = model_24h[0]
    p = subprocess.run([str(exe), str(model)], capture_output=True, text=True, check=True)
    out = np.array([line.split() for line in p.stdout.split("\n") if line.strip()], dtype=float)

    ncol = 4
    c = Coupler(model, ncol, policy="persistence")
    c.set_mask(np.array([True, True, False, True]))
    cols = np.arange(1, ncol + 1)
    for t in range(1, 401):
        tsoil_k = 298.15 + 6 * np.sin(2 * np.arccos(-1.0) * t / 48) + 0.5 * cols
        rain = np.full(ncol, 2e-3 if t % 150 == 0 else 0.0)
        r = c.step(tsoil_k - 273.15, 0.06 + 0.01 * cols, rain * 1800.0)
    np.testing.assert_array_equal(out[:, 2], r.status)
    assert r.status[2] == 5 and np.all(r.status[[0, 1, 3]] <= 1)
    np.testing.assert_allclose(out[:, 1], r.rsoil, rtol=1e-6)
