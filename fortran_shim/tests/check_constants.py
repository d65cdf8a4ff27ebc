"""CTest `fortran_constants` (issue 9, item 2): every RSC_ constant of the C header has a Fortran
parameter of the same name and value in rsoil_couple_mod.

    python check_constants.py --header csrc/rsoil_couple.h --cc CC --fc FC --moddir DIR --work DIR

The names are read from the header here, independently of the CMake generator
(cmake/RsoilFortranConstants.cmake): every enumerator named RSC_* of every `enum { ... }` and every
object-like `#define RSC_* <integer expression>` (RSC_API, the visibility attribute, is not a constant).
The values are not parsed at all: a C program compiled against the header prints what the C compiler
makes of each name, and a Fortran program that `use`s rsoil_couple_mod prints the Fortran values.
A name missing in Fortran is reported from the Fortran compiler's error; a value that differs is
reported with both values. Exit 0 when all agree, 1 otherwise.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path


def header_names(text: str) -> list[str]:
    """RSC_ enumerators and integer-valued RSC_ macros of the header, in header order."""
    code = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    code = re.sub(r"//[^\n]*", " ", code)
    found: list[tuple[int, str]] = []
    for m in re.finditer(r"\benum\b[^{;]*\{(.*?)\}", code, flags=re.S):
        for item in m.group(1).split(","):
            name = re.match(r"\s*(RSC_\w+)", item)
            if name:
                found.append((m.start(1) + m.group(1).find(name.group(1)), name.group(1)))
    for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+(RSC_\w+)(?![\w(])[ \t]*([^\n]*)$", code, flags=re.M):
        name, value = m.group(1), m.group(2).strip()
        if name == "RSC_API" or not value or value.startswith('"'):
            continue
        found.append((m.start(), name))
    return [n for _, n in sorted(found)]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def values(out: str) -> dict[str, int]:
    return {k.upper(): int(v) for k, v in (line.split() for line in out.splitlines() if line.strip())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--header", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--fc", required=True)
    ap.add_argument("--moddir", required=True, help="folder of rsoil_couple_mod.mod")
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    header = Path(a.header).resolve()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    names = header_names(header.read_text())
    print(f"{header.name}: {len(names)} RSC_ constants: {' '.join(names)}")
    if len(names) < 10:
        print("FAIL  fewer than 10 RSC_ constants found in the header: its layout changed")
        return 1

    c = work / "constants_c.c"
    c.write_text(f'#include <stdio.h>\n#include "{header}"\nint main(void) {{\n'
                 + "".join(f'  printf("%s %lld\\n", "{n}", (long long)({n}));\n' for n in names)
                 + "  return 0;\n}\n")
    p = run([a.cc, str(c), "-o", "constants_c"], work)
    if p.returncode:
        print(f"FAIL  the C program does not compile:\n{p.stderr}")
        return 1
    cvals = values(run(["./constants_c"], work).stdout)

    f = work / "constants_f.f90"
    uses = ", &\n       ".join(names)
    f.write_text("program constants_f\n  use rsoil_couple_mod, only: " + uses + "\n  implicit none\n"
                 + "".join(f"  print '(a,1x,i0)', '{n}', {n}\n" for n in names) + "end program constants_f\n")
    p = run([a.fc, f"-I{Path(a.moddir).resolve()}", str(f), "-o", "constants_f"], work)
    if p.returncode:
        missing = sorted({m.upper() for m in re.findall(r"Symbol [‘'](\w+)[’'] referenced at \(1\) not found",
                                                        p.stderr)})
        if missing:
            print(f"FAIL  not in rsoil_couple_mod (in {header.name}): {' '.join(missing)}")
        else:
            print(f"FAIL  the Fortran program does not compile:\n{p.stderr}")
        return 1
    fvals = values(run(["./constants_f"], work).stdout)

    bad = [f"{n}: C {cvals[n]}, Fortran {fvals.get(n)}" for n in names if fvals.get(n) != cvals[n]]
    if bad:
        print("FAIL  values differ: " + "; ".join(bad))
        return 1
    print(f"ok    all {len(names)} RSC_ constants of {header.name} have an equal Fortran parameter "
          "in rsoil_couple_mod")
    return 0


if __name__ == "__main__":
    sys.exit(main())
