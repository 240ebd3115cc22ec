"""The ``knowpain`` command line: one module per command group, one map from error to exit
status (:mod:`model.cli.status`).

A refusal knowpain knows about (a :class:`~model.errors.KnowpainError`) is printed as
``knowpain: error: ...`` with its status; anything else is a bug and surfaces as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from model.cli import calibration, cases, lifter
from model.cli.io import surviving_pipe
from model.cli.status import ExitStatus, describe_statuses, exit_status
from model.errors import KnowpainError

__all__ = ["ExitStatus", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="knowpain",
        description="Why is my low back sore after deadlifts? Decision support, not a diagnosis.",
        epilog="exit status:\n" + describe_statuses(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lifter.add_commands(sub)
    calibration.add_commands(sub)
    cases.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``knowpain`` with ``argv`` (default: the process arguments); returns the status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with surviving_pipe() as stdout:
        status = _run(argv)
    if stdout.error is not None and status == ExitStatus.SUCCESS:
        # the work is done (any output file written); what it printed is lost
        print(f"knowpain: error: could not write to standard output: "
              f"{stdout.error.strerror or stdout.error}", file=sys.stderr)
        status = int(ExitStatus.CANNOT_WRITE)
    return status


def _run(argv: list[str]) -> int:
    try:
        if argv[:1] == ["app"]:  # everything after `app` belongs to streamlit run
            return lifter.run_app(argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except KnowpainError as exc:
        print(f"knowpain: error: {exc}", file=sys.stderr)
        return int(exit_status(exc))
    except KeyboardInterrupt:
        return int(ExitStatus.INTERRUPTED)
