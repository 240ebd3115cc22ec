"""``knowpain cases ...``: import, export, list and delete the clinic's recorded cases."""

from __future__ import annotations

import argparse

from model.cli import io
from model.cli.calibration import PASSCODE_HELP, shared_options


def cmd_import(args: argparse.Namespace) -> int:
    """Validate a cases CSV against the active calibration and store every case, or none."""
    from model.service.clinic import Clinic

    conf = io.settings(args)
    with Clinic.open(conf, io.grant(args, conf)) as clinic:
        ids = clinic.import_cases(args.csv, args.who)
    span = f"{ids[0]}" if len(ids) == 1 else f"{ids[0]}..{ids[-1]}" if ids else "none"
    print(f"Imported {len(ids)} case(s) from {args.csv} into {clinic.path} (ids {span}).")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write every stored case as CSV (the format ``cases import`` reads)."""
    from calibration.cases import cases_to_csv
    from model.service.clinic import Clinic

    with Clinic.open(io.settings(args)) as clinic:
        cal = clinic.calibration()
        cases = clinic.cases()
    text = cases_to_csv(cases, variables=cal.variables, causes=cal.causes,
                        outcome_node=cal.outcome)
    io.atomic_write(args.out, text, force=args.force)
    print(f"Wrote {len(cases)} case(s) to {args.out}.")
    return 0


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def cmd_list(args: argparse.Namespace) -> int:
    """Print the stored cases, oldest first."""
    from model.service.clinic import Clinic

    with Clinic.open(io.settings(args)) as clinic:
        cases = clinic.cases()
    print(f"{len(cases)} case(s) in {clinic.path}:")
    for c in cases:
        causes = ", ".join(f"{k}={v}" for k, v in c.adjudicated.items()) or "-"
        print(f"  {c.id:>5}  {c.created_at:%Y-%m-%d %H:%M}  {_one_line(c.therapist, 16):<16}  "
              f"{len(c.evidence):>2} finding(s)  causes: {causes}  outcome: {c.outcome or '-'}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete one stored case (its content is kept in the audit log)."""
    from model.service.clinic import Clinic

    conf = io.settings(args)
    with Clinic.open(conf, io.grant(args, conf)) as clinic:
        clinic.delete_case(args.case_id, args.who)
    print(f"Deleted case {args.case_id} (its content is kept in the audit log).")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``cases`` and its verbs to the ``knowpain`` parser."""
    opts = shared_options()
    store, write, output = opts["store"], opts["write"], opts["output"]
    cases = sub.add_parser(
        "cases", help="therapist tools: import, export and list recorded cases",
        description="Recorded cases in the store. " + PASSCODE_HELP,
    )
    verbs = cases.add_subparsers(dest="cases_command", required=True, metavar="VERB")

    p = verbs.add_parser(
        "import", parents=[store, write],
        help="store every case of a CSV file, or none if any row is invalid",
        description="Validate a cases CSV against the active calibration and store all its "
        "cases in one transaction; any problem (listed by row and column) stores nothing. "
        "Rows without a therapist column are recorded under --who. " + PASSCODE_HELP,
    )
    p.add_argument("csv", metavar="CASES.csv")
    p.set_defaults(func=cmd_import)

    p = verbs.add_parser("export", parents=[output, store], help="write every case as CSV")
    p.set_defaults(func=cmd_export)

    p = verbs.add_parser("list", parents=[store], help="list the stored cases")
    p.set_defaults(func=cmd_list)

    p = verbs.add_parser("delete", parents=[store, write],
                         help="delete one case (kept in the audit log)",
                         description="Delete one stored case. " + PASSCODE_HELP)
    p.add_argument("case_id", type=int, metavar="CASE_ID")
    p.set_defaults(func=cmd_delete)
