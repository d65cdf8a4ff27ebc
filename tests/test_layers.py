"""The package's layers (pyproject's import-linter contract): kept by the source, and broken by an upward import."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")


def lint(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the contract of pyproject.toml on the package under `root`."""
    env = {"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    return subprocess.run(["lint-imports", "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True)


def source_copy(repo_root: Path, dest: Path) -> Path:
    shutil.copytree(repo_root / "rsoil_couple", dest / "rsoil_couple",
                    ignore=shutil.ignore_patterns("*.so", "lib", "include", "bin", "__pycache__"))
    shutil.copy(repo_root / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_layers_contract_is_kept(repo_root, tmp_path):
    p = lint(source_copy(repo_root, tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 kept, 0 broken" in p.stdout


def test_an_upward_import_breaks_the_contract(repo_root, tmp_path):
    root = source_copy(repo_root, tmp_path)
    units = root / "rsoil_couple" / "data" / "units.py"
    units.write_text(units.read_text() + "\nfrom ..prediction import inputs  # noqa: E402,F401\n")
    p = lint(root)
    assert p.returncode != 0
    assert "BROKEN" in p.stdout and "rsoil_couple.data.units -> rsoil_couple.prediction" in p.stdout, p.stdout
