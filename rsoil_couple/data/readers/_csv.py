"""CSV helpers shared by the readers: reading, required columns, numeric parsing, fields."""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ...errors import DataError
from ...variables import CANONICAL_VARS
from ..canonical import _Field


# --------------------------------------------------------------------------------------------
# CSV helpers
# --------------------------------------------------------------------------------------------
def open_text(path: Path):
    """A text handle of a CSV file, gzip-compressed when its name ends in ``.gz`` (the packaged sample)."""
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _header_line(path: Path, text: list[str]) -> tuple[int, list[str]]:
    """(0-based index, column names) of the header: the first line not starting with '#'."""
    h = next((i for i, line in enumerate(text) if not line.startswith("#")), None)
    if h is None or not text[h].strip():
        raise DataError(f"{path}: not a readable CSV file (no header line)")
    header = next(csv.reader([text[h]]))
    if len(header) == 1 and ";" in text[h]:
        raise DataError(f"{path}: line {h + 1} (the header) is separated by ';', not ','; the readers "
                        "read comma-separated files (convert ';' to ',' and decimal commas to points)")
    return h, [c.strip() for c in header]


def _read_csv(path: Path) -> pd.DataFrame:
    """The data rows of a comma-separated file; ``df.attrs["lines"]`` holds each row's 1-based line
    number in the file (comment and header lines counted), which every error message names.

    Refused with the line number: a ';'-separated file, and a line with fewer or more fields than
    the header (a truncated, junk or ';'-separated line). Blank lines are skipped.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open_text(path) as fh:
            text = fh.read().splitlines()
    except (OSError, EOFError) as exc:   # a broken .gz
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    h, header = _header_line(path, text)
    lines, rows = [], []
    for i in range(h + 1, len(text)):
        if not text[i].strip():
            continue
        n = len(next(csv.reader([text[i]])))
        if n != len(header):
            what = "a short (truncated or junk) line" if n < len(header) else "too many fields"
            hint = "; it is separated by ';', not ','" if ";" in text[i] and n < len(header) else ""
            raise DataError(f"{path}: line {i + 1}: {n} field(s) but the header (line {h + 1}) has "
                            f"{len(header)}: {what}{hint}")
        lines.append(i + 1)
        rows.append(text[i])
    try:
        df = pd.read_csv(io.StringIO("\n".join([text[h]] + rows)),
                         na_values=["-9999", "-9999.0", "NA", "NaN", "nan"],
                         keep_default_na=True, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["lines"] = np.asarray(lines, dtype=np.int64)
    return df


def _line(df: pd.DataFrame, i: int) -> str:
    """'line N' of data row `i` (0-based) of a frame read by `_read_csv`."""
    lines = df.attrs.get("lines")
    return f"line {int(lines[i])}" if lines is not None and i < len(lines) else f"data row {i + 1}"


def _need(df: pd.DataFrame, path: Path, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{path}: column(s) {missing} not found ({what}); columns present: "
                        f"{list(df.columns)[:30]}")


def _numeric(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    s = pd.to_numeric(df[col], errors="coerce")
    bad = s.isna() & df[col].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: {_line(df, i)}: column '{col}': non-numeric value "
                        f"{df[col].iloc[i]!r}")
    return np.array(s.to_numpy(dtype=np.float64), copy=True)


def _fields_from(df: pd.DataFrame, path: Path, spec: Mapping[str, tuple[str, str]],
                 units_override: Mapping[str, str] | None, optional: Sequence[str] = (),
                 variables: Sequence[str] | None = None) -> dict[str, _Field]:
    """`spec` {var: (column, units)} -> fields; `optional` vars are skipped when absent; with
    `variables`, only those (and tsoil, which every file needs) are read: other columns are not
    looked at, so their faults cannot fail the read.
    """
    units_override = dict(units_override or {})
    unknown = set(units_override) - set(CANONICAL_VARS)
    if unknown:
        raise DataError(f"{path}: units given for unknown variable(s) {sorted(unknown)}; "
                        f"expected some of {sorted(CANONICAL_VARS)}")
    fields = {}
    for var, (col, units) in spec.items():
        if variables is not None and var not in variables and var != "tsoil":
            continue
        if col not in df.columns:
            if var in optional:
                continue
            _need(df, path, [col], f"{var} [{CANONICAL_VARS[var].units}]")
        fields[var] = _Field(_numeric(df, col, path)[:, None], units_override.get(var, units),
                             col)
    return fields
