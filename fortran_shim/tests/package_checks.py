"""CTest checks of the installed packaging for hosts (issue 9, item 8): CMake config and pkg-config.

    python package_checks.py CASE --work DIR --build-dir B --source-dir S --cmake CMAKE --fc FC
                             --model MODEL [--pkg-config PKGCONFIG]

Cases:
  install    `cmake --install B` into DIR/staging, then move it to DIR/prefix (an installed tree must
             be relocatable: a wheel lands in any site-packages); check the files, that no file of the
             CMake/pkg-config packaging names the staging folder or the build tree, and that
             `rsoil-couple config --cmake-dir / --pkgconfig-dir` (rsoil_couple/buildinfo.py, copied
             beside the installed libraries as a wheel holds it) print the installed folders.
  cmake      configure and build fortran_shim/examples (a SEPARATE CMake project:
             find_package(rsoil_couple CONFIG REQUIRED COMPONENTS Fortran), target
             rsoil_couple::rsoil_couple_f) with only CMAKE_PREFIX_PATH=DIR/prefix, run it on the test model.
  pkgconfig  build fortran_shim/examples/minimal_host.f90 with a plain command line from
             `pkg-config --cflags --libs rsoil_couple_f` (PKG_CONFIG_PATH = --pkgconfig-dir), run it.
Both hosts must run without LD_LIBRARY_PATH, load the libraries of the moved prefix, keep Q10 in their
masked column 3 (status 5) and give the same numbers. Every case prints what it checked; exit 1 on a
failed check.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

FAILURES: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        FAILURES.append(what)


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: nothing pointing at the build tree or a prefix."""
    env = dict(os.environ)
    for k in ("LD_LIBRARY_PATH", "CMAKE_PREFIX_PATH", "PKG_CONFIG_PATH", "rsoil_couple_DIR", "PYTHONPATH"):
        env.pop(k, None)
    return env


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        print(p.stdout[-4000:])
        print(p.stderr[-4000:])
        sys.exit(f"command failed (exit {p.returncode})")
    return p


def config_flag(prefix: Path, flag: str) -> str:
    """`rsoil-couple config FLAG` of the installed tree: buildinfo.py beside the installed lib/ and
    include/ (as in a wheel), imported without site-packages or the source tree (-S -E).
    """
    code = ("import argparse, sys; sys.path.insert(0, sys.argv[1]); from rsoil_couple.core import buildinfo as b; "
            "p = argparse.ArgumentParser(); b.configure_parser(p); sys.exit(b.run(p.parse_args([sys.argv[2]])))")
    p = sh([sys.executable, "-S", "-E", "-c", code, prefix, flag], env=clean_env(), cwd=prefix)
    return p.stdout.strip()


def paths(a) -> dict[str, Path]:
    work = Path(a.work).resolve()
    pkg = work / "prefix" / "rsoil_couple"
    return {"work": work, "staging": work / "staging", "prefix": work / "prefix", "pkg": pkg,
            "cmakedir": pkg / "lib" / "cmake" / "rsoil_couple", "pcdir": pkg / "lib" / "pkgconfig"}


def install(a) -> None:
    p = paths(a)
    for d in (p["staging"], p["prefix"]):
        shutil.rmtree(d, ignore_errors=True)
    p["work"].mkdir(parents=True, exist_ok=True)
    sh([a.cmake, "--install", a.build_dir, "--prefix", p["staging"]])
    p["staging"].rename(p["prefix"])           # relocation: nothing may still point at staging
    pkg = p["pkg"]
    want = ["lib/librsoil_core.so", "lib/librsoil_couple_f.so", "include/rsoil_couple.h",
            "include/rsoil_couple_mod.mod", "lib/cmake/rsoil_couple/rsoil_coupleConfig.cmake",
            "lib/cmake/rsoil_couple/rsoil_coupleConfigVersion.cmake",
            "lib/cmake/rsoil_couple/rsoil_coupleTargets.cmake", "lib/pkgconfig/rsoil_couple.pc",
            "lib/pkgconfig/rsoil_couple_f.pc"]
    missing = [f for f in want if not (pkg / f).is_file()]
    check(not missing, f"install: {len(want) - len(missing)} of {len(want)} files under {pkg}" +
          (f"; missing {missing}" if missing else ""))
    texts = [f for d in (p["cmakedir"], p["pcdir"]) for f in sorted(d.glob("*")) if f.is_file()]
    leaks = [f.name for f in texts
             if str(p["staging"]) in f.read_text() or str(Path(a.build_dir).resolve()) in f.read_text()
             or str(Path(a.source_dir).resolve()) in f.read_text()]
    check(not leaks, f"install: the {len(texts)} CMake/pkg-config files name neither the install "
          f"prefix nor the build or source tree (relocatable)" + (f"; they do: {leaks}" if leaks else ""))
    src = Path(a.source_dir) / "rsoil_couple"   # the Python files `rsoil-couple config` needs, as a wheel has them
    (pkg / "core").mkdir(exist_ok=True)
    for f in ("__init__.py", "core/__init__.py", "core/buildinfo.py"):
        shutil.copyfile(src / f, pkg / f)
    got = {"cmake_dir": config_flag(p["prefix"], "--cmake-dir"),
           "pkgconfig_dir": config_flag(p["prefix"], "--pkgconfig-dir")}
    check(got["cmake_dir"] == str(p["cmakedir"]), f"rsoil-couple config --cmake-dir: {got['cmake_dir']}")
    check(got["pkgconfig_dir"] == str(p["pcdir"]), f"rsoil-couple config --pkgconfig-dir: {got['pkgconfig_dir']}")
    (p["work"] / "config.json").write_text(json.dumps(got, indent=1))


def run_host(exe: Path, a, p: dict, what: str) -> str:
    """Run a built minimal_host on the test model (clean environment); check it loads the moved
    prefix's libraries and keeps Q10 in its masked column; return its output.
    """
    env = clean_env()
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, env=env).stdout
    libs = {k: str(Path(v).resolve())
            for k, v in re.findall(r"^\s*(librsoil_\w+\.so)\s*=>\s*(\S+)", ldd, flags=re.M)}
    lib = str(p["pkg"] / "lib")
    check(set(libs) == {"librsoil_couple_f.so", "librsoil_core.so"} and
          all(str(Path(v).resolve()).startswith(lib + "/") for v in libs.values()),
          f"{what}: without LD_LIBRARY_PATH the host loads the moved prefix's libraries: {libs}")
    out = sh([exe, Path(a.model).resolve()], env=env).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    ok = len(rows) == 4
    if ok:
        status = [int(r[2]) for r in rows]
        rsoil = [float(r[1]) for r in rows]
        ok = status[2] == 5 and all(s <= 1 for s in status[:2] + status[3:]) and all(x > 0 for x in rsoil)
    check(ok, f"{what}: 4 columns, column 3 masked (status 5), the others ran the LSTM: {rows}")
    return out


def cmake_consumer(a) -> None:
    p = paths(a)
    cfg = json.loads((p["work"] / "config.json").read_text())
    bdir = p["work"] / "cmake_host"
    shutil.rmtree(bdir, ignore_errors=True)
    env = clean_env()
    sh([a.cmake, "-S", Path(a.source_dir) / "fortran_shim" / "examples", "-B", bdir,
        f"-DCMAKE_PREFIX_PATH={p['prefix']}", f"-DCMAKE_Fortran_COMPILER={a.fc}"], env=env)
    cache = (bdir / "CMakeCache.txt").read_text()
    found = re.search(r"^rsoil_couple_DIR:PATH=(.*)$", cache, flags=re.M)
    check(found is not None and Path(found.group(1)).resolve() == Path(cfg["cmake_dir"]),
          f"cmake: find_package(rsoil_couple CONFIG) with CMAKE_PREFIX_PATH=<prefix> found "
          f"{found.group(1) if found else None} (== rsoil-couple config --cmake-dir)")
    sh([a.cmake, "--build", bdir], env=env)
    out = run_host(bdir / "minimal_host", a, p, "cmake")
    (p["work"] / "cmake_host_output.txt").write_text(out)
    # the version file: the same major.minor is accepted, another minor release is not
    vdir = p["work"] / "cmake_version"
    shutil.rmtree(vdir, ignore_errors=True)
    vdir.mkdir(parents=True)
    (vdir / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(v LANGUAGES NONE)\n"
        "find_package(rsoil_couple 0.1 CONFIG REQUIRED)\nmessage(STATUS \"0.1: ${rsoil_couple_VERSION}\")\n"
        "find_package(rsoil_couple 0.99 CONFIG QUIET)\n"
        "if(rsoil_couple_FOUND)\n  message(FATAL_ERROR \"0.99 accepted\")\nendif()\n")
    v = subprocess.run([a.cmake, "-S", vdir, "-B", vdir / "b", f"-DCMAKE_PREFIX_PATH={p['prefix']}"],
                       capture_output=True, text=True, env=env)
    check(v.returncode == 0, "cmake: rsoil_coupleConfigVersion accepts 0.1 and refuses 0.99 "
          + (v.stdout + v.stderr)[-300:].replace("\n", " ") if v.returncode else
          "cmake: rsoil_coupleConfigVersion accepts 0.1 and refuses 0.99")


def pkgconfig_consumer(a) -> None:
    p = paths(a)
    cfg = json.loads((p["work"] / "config.json").read_text())
    env = dict(clean_env(), PKG_CONFIG_PATH=cfg["pkgconfig_dir"])
    flags = sh([a.pkg_config, "--cflags", "--libs", "rsoil_couple_f"], env=env).stdout.split()
    print("pkg-config --cflags --libs rsoil_couple_f: " + " ".join(flags))
    version = sh([a.pkg_config, "--modversion", "rsoil_couple_f"], env=env).stdout.strip()
    check(bool(re.fullmatch(r"\d+\.\d+\.\d+", version)), f"pkgconfig: rsoil_couple_f version {version}")
    check(f"-I{p['pkg'] / 'include'}" in [f.replace("/lib/pkgconfig/../..", "") for f in flags],
          "pkgconfig: the include folder (rsoil_couple_mod.mod) of the moved prefix")
    bdir = p["work"] / "pkgconfig_host"
    shutil.rmtree(bdir, ignore_errors=True)
    bdir.mkdir(parents=True)
    exe = bdir / "minimal_host"
    sh([a.fc, Path(a.source_dir) / "fortran_shim" / "examples" / "minimal_host.f90", "-o", exe] + flags,
       env=env, cwd=bdir)
    out = run_host(exe, a, p, "pkgconfig")
    ref = p["work"] / "cmake_host_output.txt"
    if ref.is_file():
        check(out == ref.read_text(), "pkgconfig: output identical to the CMake-built host's")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=["install", "cmake", "pkgconfig"])
    for opt in ("--work", "--build-dir", "--source-dir", "--cmake", "--fc", "--model"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--pkg-config", default="pkg-config")
    a = ap.parse_args()
    {"install": install, "cmake": cmake_consumer, "pkgconfig": pkgconfig_consumer}[a.case](a)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
