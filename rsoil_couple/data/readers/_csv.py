"""CSV helpers shared by the readers: reading, required columns, numeric parsing, fields."""
from __future__ import annotations

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
def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    skip = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("#"):
                skip += 1
            else:
                break
    try:
        df = pd.read_csv(path, skiprows=skip, na_values=["-9999", "-9999.0", "NA", "NaN", "nan"],
                         keep_default_na=True, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


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
        raise DataError(f"{path}: column '{col}': non-numeric value {df[col].iloc[i]!r} in data "
                        f"row {i + 1}")
    return np.array(s.to_numpy(dtype=np.float64), copy=True)


def _fields_from(df: pd.DataFrame, path: Path, spec: Mapping[str, tuple[str, str]],
                 units_override: Mapping[str, str] | None, optional: Sequence[str] = ()
                 ) -> dict[str, _Field]:
    """`spec` {var: (column, units)} -> fields; `optional` vars are skipped when absent."""
    units_override = dict(units_override or {})
    unknown = set(units_override) - set(CANONICAL_VARS)
    if unknown:
        raise DataError(f"{path}: units given for unknown variable(s) {sorted(unknown)}; "
                        f"expected some of {sorted(CANONICAL_VARS)}")
    fields = {}
    for var, (col, units) in spec.items():
        if col not in df.columns:
            if var in optional:
                continue
            _need(df, path, [col], f"{var} [{CANONICAL_VARS[var].units}]")
        fields[var] = _Field(_numeric(df, col, path)[:, None], units_override.get(var, units),
                             col)
    return fields
