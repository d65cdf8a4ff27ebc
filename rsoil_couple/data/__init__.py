"""Site data: readers that turn soil-respiration observation files into one canonical xarray Dataset.

The canonical Dataset (see ``docs/data.md``):

- dims ``time`` (regular; the coordinate is the END of each step) and ``column`` (string site ids);
- float64 variables on ``(time, column)``: ``tsoil`` [degC], ``swc`` [m3 m-3], ``precip`` [mm per
  step], ``rsoil`` [umol m-2 s-1] (absent for forcing-only files), optional extra drivers
  ``tair`` [degC], ``rg`` [W m-2], ``ppfd`` [umol m-2 s-1];
- ``qc`` uint8 ``(time, column)``: a CF bitmask (``flag_masks``/``flag_meanings``), see `QC_FLAGS`;
- coordinate ``depth`` (column) [m] and attrs ``step_seconds``, ``depth_m``, ``site``, ``source``,
  ``synthetic``, ``title``, ``Conventions`` plus ``n_*`` counts of everything the reader removed,
  flagged or inserted.

Readers never fill values. A driver that a file does not have is absent, not zeros. Timestamps
missing from a file are inserted on the regular axis as NaN and flagged; everything else odd
(unknown units, wrong columns, duplicated / non-monotonic / irregular time, an all-missing
variable, values that only make sense in other units) raises `DataError` naming the file, the
field and what was expected.
"""
from __future__ import annotations

from ..errors import DataError
from ..variables import CANONICAL_VARS, DRIVERS, GC_PER_UMOL_CO2, VarSpec
from .canonical import (
                        AUX_VARS,
                        MAX_OUT_OF_RANGE_FRACTION,
                        QC_FLAGS,
                        check_canonical,
                        check_physical_range,
                        concat_sites,
                        gap_report,
                        write_canonical,
)
from .readers import (
                        HN1_RSOIL_COLUMNS,
                        read_ameriflux_base,
                        read_canonical_netcdf,
                        read_cosore,
                        read_csv_mapped,
                        read_site,
                        read_us_bi1,
                        read_us_hn1,
)
from .resample import resample
from .sites import SITES, SiteInfo, registered, shared_data_dir, site_path
from .units import convert_units

__all__ = [
    "DataError", "CANONICAL_VARS", "DRIVERS", "QC_FLAGS", "SITES", "SiteInfo", "VarSpec",
    "read_site", "read_us_hn1", "read_us_bi1", "read_cosore", "registered", "read_ameriflux_base",
    "read_csv_mapped", "read_canonical_netcdf", "write_canonical", "check_canonical",
    "concat_sites", "gap_report", "shared_data_dir", "site_path", "convert_units",
    "GC_PER_UMOL_CO2", "HN1_RSOIL_COLUMNS", "MAX_OUT_OF_RANGE_FRACTION",
    "check_physical_range", "resample", "AUX_VARS",
]
