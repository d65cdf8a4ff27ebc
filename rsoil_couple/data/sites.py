"""The shared data folder (``../shared/data``) and the registry of its real files."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# The shared data folder and the registry of real files
# --------------------------------------------------------------------------------------------
def shared_data_dir() -> Path:
    """The real-data folder: ``$RSOIL_SHARED_DATA``, else ``../shared/data`` beside the source
    tree, else (an installed package) ``../shared/data`` beside the working directory.
    """
    if "RSOIL_SHARED_DATA" in os.environ:
        return Path(os.environ["RSOIL_SHARED_DATA"])
    candidates = [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return next((c for c in candidates if (c / "README.md").is_file()), candidates[0])


@dataclass(frozen=True)
class SiteInfo:
    """One real file of ``shared_data_dir()``: where it is and what it holds (docs/data.md, "Sites")."""

    path: str            # relative to shared_data_dir()
    site: str
    depth_m: float       # depth of tsoil/swc [m]; NaN where the file does not say
    step_seconds: int
    reader: str          # name of the reader function (rsoil_couple.data.readers)
    has_rsoil: bool
    description: str
    has_precip: bool = True
    #: keyword arguments the reader needs for this file, as (name, value) pairs: the column depth
    #: of SCI-Embudo, the ancillary precipitation file of ES-Agu (relative to the site file)
    options: tuple = ()


_AGU_PRECIP = "ES-Agu_ancillary_P_PAR_WIND_30min.csv"

SITES: dict[str, SiteInfo] = {
    "US-Hn1_2019": SiteInfo("US-Hn1/US-Hn1_2019_30min.csv", "US-Hn1", 0.15, 1800, "read_us_hn1",
                            True, "US-Hn1 sagebrush steppe, 2019-06-01..2019-09-14, chamber Rsoil"),
    "US-Hn1_2016-2017": SiteInfo("US-Hn1/US-Hn1_2016-2017_forcing_30min.csv", "US-Hn1", 0.15,
                                 1800, "read_us_hn1", False,
                                 "US-Hn1 drivers only, 2016-06-01..2017-06-30"),
    "US-Bi1": SiteInfo("US-Bi1/US-Bi1_2018-07_2021-12_30min.csv", "US-Bi1", float("nan"), 1800,
                       "read_us_bi1", True,
                       "US-Bi1 irrigated alfalfa, 2018-07..2021-12 (gap-filled tower drivers)"),
    "US-Wkg": SiteInfo("cosore/US-Wkg/US-Wkg_60min.csv", "US-Wkg", 0.05, 3600, "read_cosore",
                       True, "COSORE Walnut Gulch Kendall grassland, 2017-01..2019-05",
                       has_precip=False),
    "US-SRM": SiteInfo("cosore/US-SRM/US-SRM_60min.csv", "US-SRM", 0.05, 3600, "read_cosore",
                       True, "COSORE Santa Rita mesquite savanna, 2017-03..2018-06",
                       has_precip=False),
    "ES-Agu": SiteInfo("cosore/ES-Agu/ES-Agu_30min.csv", "ES-Agu", 0.05, 1800, "read_cosore",
                       True, "COSORE Agua Amarga grassland, 2011-06..2013-11; precipitation "
                       f"from {_AGU_PRECIP}", options=(("precip_file", _AGU_PRECIP),)),
    "Haibei": SiteInfo("cosore/Haibei/Haibei_60min.csv", "Haibei", 0.05, 3600, "read_cosore",
                       True, "COSORE Haibei alpine grassland, 2008-06..2013-09",
                       has_precip=False),
    "SMER": SiteInfo("cosore/SMER/SMER_60min.csv", "SMER", 0.05, 3600, "read_cosore", True,
                     "COSORE Santa Margarita Ecological Reserve coastal sage scrub, 2010-02..2011-08; "
                     "about 18 % of hours measured, SWC gap-filled by its authors",
                     has_precip=False),
    "SCI-Embudo": SiteInfo("cosore/SCI-Embudo/SCI-Embudo_120min.csv", "SCI-Embudo", 0.04, 7200,
                           "read_cosore", True,
                           "COSORE Santa Cruz Island Bishop pine forest, 2008-06..2009-10; soil "
                           "drivers at 4 cm (CSR_T4, CSR_SM4): the file has no 5 cm columns",
                           has_precip=False, options=(("depth_cm", 4),)),
}


def registered(path: str | Path) -> str | None:
    """The `SITES` key of a file, when `path` ends with a registered relative path, else None."""
    parts = Path(path).parts
    for key, info in SITES.items():
        rel = Path(info.path).parts
        if len(parts) >= len(rel) and parts[-len(rel):] == rel:
            return key
    return None


def site_path(name: str) -> Path:
    """Absolute path of registered file `name` (a key of `SITES`)."""
    if name not in SITES:
        raise KeyError(f"unknown site file '{name}'; registered: {sorted(SITES)}")
    return shared_data_dir() / SITES[name].path


#: The packaged sample of real data (US-Hn1 2019, the columns the demo reads; sample_data/README.md).
SAMPLE_US_HN1 = Path(__file__).resolve().parents[1] / "sample_data" / "US-Hn1_2019_demo_30min.csv.gz"
