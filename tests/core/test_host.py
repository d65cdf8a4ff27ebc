"""rsoil_couple.core.host: the host's namelist is written by f90nml and reads back exactly."""
from __future__ import annotations

import f90nml

from rsoil_couple.core.host import write_namelist


def test_namelist_round_trips_every_type(tmp_path):
    values = {"model_file": "dir with space/it's.pt", "restart": True, "strict": False, "stop_step": 48,
              "tsoil_spread_k": 0.1, "lstm_column_list": [1, 3, 5]}
    path = write_namelist(tmp_path / "host.nml", **values)
    text = path.read_text()
    assert text.lstrip().startswith("&rsoil_host") and "[" not in text   # a list is a Fortran array
    back = f90nml.read(path)["rsoil_host"]
    assert {k: back[k] for k in values} == values
