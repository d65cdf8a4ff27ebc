"""CTest `installed_model_by_name`: an INSTALLED librsoil_core.so finds a model by name beside itself.

Installs the build tree into ``WORK/prefix`` (``cmake --install``), moves the prefix (the lookup must
follow the library, not the install path), puts MODEL as ``rsoil_couple/pretrained/ctest-model.pt`` in
it, and calls the installed C API through ctypes with RSOIL_MODEL_PATH unset: ``rsc_coupler_create``
of ``"ctest-model"`` succeeds; an unknown name is RSC_E_FILE naming the moved prefix's
``rsoil_couple/pretrained`` (installed models) and the available name.
Usage: check_installed_lookup.py --cmake CMAKE --build-dir BUILD --model MODEL.pt --work DIR
"""
from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch  # noqa: F401  (libtorch loaded first, as the Python bindings do)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for a in ("--cmake", "--build-dir", "--model", "--work"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run([args.cmake, "--install", args.build_dir, "--prefix", str(work / "prefix")], check=True,
                   stdout=subprocess.DEVNULL)
    prefix = work / "moved"
    (work / "prefix").rename(prefix)
    models = prefix / "rsoil_couple" / "pretrained"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.model, models / "ctest-model.pt")
    os.environ.pop("RSOIL_MODEL_PATH", None)
    lib = ctypes.CDLL(str(prefix / "rsoil_couple" / "lib" / "librsoil_core.so"))
    lib.rsc_last_error_message.restype = ctypes.c_char_p
    h = ctypes.c_void_p()
    failed = 0
    rc = lib.rsc_coupler_create(b"ctest-model", 2, 2, 0, 0, 0, ctypes.byref(h))
    print(f"{'ok  ' if rc == 0 else 'FAIL'}  create by name from the installed models: rc {rc} "
          f"{lib.rsc_last_error_message().decode() if rc else ''}")
    failed += rc != 0
    if rc == 0:
        lib.rsc_coupler_destroy(ctypes.byref(h))
    rc = lib.rsc_coupler_create(b"no-such-model", 2, 2, 0, 0, 0, ctypes.byref(h))
    msg = lib.rsc_last_error_message().decode()
    want = f"{models} (installed models); available names: ctest-model"
    ok = rc == 4 and want in msg
    print(f"{'ok  ' if ok else 'FAIL'}  unknown name: rc {rc} (RSC_E_FILE 4), message: {msg}")
    failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
