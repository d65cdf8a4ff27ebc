"""The `rsoil-couple` command line: one sub-command per module, imported only when used."""
from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> module; each module defines `configure_parser(parser)` and `run(args) -> int`.
COMMANDS = {
    "mi": ("rsoil_couple.baselines.mi", "lagged mutual information between Rsoil and its drivers (Fig. 2A)"),
    "train": ("rsoil_couple.training.run", "train one model from a TOML config and export it"),
    "experiment": ("rsoil_couple.training.experiment", "run a set of training cases and baselines (Table 1, Figs. 3-6)"),
    "predict": ("rsoil_couple.prediction.run", "NetCDF/CSV batch prediction through the C++ core"),
    "calibrate": ("rsoil_couple.prediction.calibrate", "fit a model's site scale on a short record of a new site"),
    "validate": ("rsoil_couple.evaluation.validate", "compare predictions, Q10 baselines and CLM output with observations"),
    "demo": ("rsoil_couple.demo", "run the whole chain on a real or the synthetic site"),
    "config": ("rsoil_couple.core.buildinfo", "print compile/link flags for C and Fortran hosts"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only `command`'s module is imported (torch is slow to import)."""
    parser = argparse.ArgumentParser(prog="rsoil-couple", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == command:
            importlib.import_module(module).configure_parser(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``rsoil-couple`` command line.

    The first argument that is not an option names the sub-command (`COMMANDS`); only its module is imported.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        Exit status: the sub-command's (0 on success), or 2 when it raised ``ValueError``, ``OSError`` or
        ``KeyError``, whose message is then printed to stderr in one line instead of a traceback.
    """
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except (ValueError, OSError, KeyError) as exc:
        # Bad input and unwritable files are reported in one line naming the problem, not as a
        # traceback (OSError includes FileNotFoundError, PermissionError, a full disk).
        print(f"rsoil-couple {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
