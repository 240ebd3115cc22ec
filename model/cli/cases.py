"""``knowpain cases ...``: import, export, list and delete the clinic's recorded cases."""

from __future__ import annotations

import argparse

from model.cli import io
from model.cli.calibration import PASSCODE_HELP, shared_options


def cmd_import(args: argparse.Namespace) -> int:
    """Import a cases CSV: new cases are stored, a file or cases imported before are
    recognised, broken rows refuse the file unless --skip-broken."""
    from model.service.clinic import Clinic

    conf = io.settings(args)
    with Clinic.open(conf, io.grant(args, conf)) as clinic:
        report = clinic.import_cases(args.csv, args.who, skip_broken=args.skip_broken)
        path = clinic.path
    for line in report.describe():
        print(line)
    for problem in [p for b in report.skipped_broken for p in b.problems][:50]:
        print(f"  - {problem}")
    print(f"Store: {path}")
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
    """Print the stored cases (a page of them: --limit, --offset) and the imports."""
    from model.service.clinic import Clinic

    with Clinic.open(io.settings(args)) as clinic:
        counts = clinic.case_counts()
        limit = counts.total if args.limit == 0 else args.limit
        cases = clinic.case_page(limit, args.offset)
        imports = clinic.imports()
        path = clinic.path
    print(f"{counts.total:,} case(s) in {path}: {counts.adjudicated:,} with an adjudicated "
          f"cause, {counts.with_outcome:,} with a follow-up outcome.")
    if cases:
        last = args.offset + len(cases)
        print(f"Cases {args.offset + 1:,}-{last:,} (oldest first):")
    for c in cases:
        causes = ", ".join(f"{k}={v}" for k, v in c.adjudicated.items()) or "-"
        ref = f"  case_id {_one_line(c.case_ref, 16)}" if c.case_ref else ""
        print(f"  {c.id:>5}  {c.created_at:%Y-%m-%d %H:%M}  {_one_line(c.therapist, 16):<16}  "
              f"{len(c.evidence):>2} finding(s)  causes: {causes}  outcome: "
              f"{c.outcome or '-'}{ref}")
    if args.offset + len(cases) < counts.total:
        print(f"  ... {counts.total - args.offset - len(cases):,} more: use --offset "
              f"{args.offset + len(cases)} (or --limit 0 for all)")
    if imports:
        print(f"Imports ({len(imports)}):")
        for r in imports[-10:]:
            print(f"  {r}: {r.rows:,} row(s), {r.imported:,} stored, {r.skipped_known:,} "
                  f"already stored, {r.skipped_broken:,} broken skipped")
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
        help="store the cases of a CSV file (a file or case_id imported before is not "
        "doubled)",
        description="Validate a cases CSV against the active calibration and store its cases "
        "in one transaction. Identical rows are separate cases; case_id is optional. A file "
        "imported before (same content), and rows whose case_id is already stored, are "
        "recognised and not imported again (the output says from which import). Any broken "
        "row (named by row and column) stores nothing unless --skip-broken. Rows without a "
        "therapist column are recorded under --who. " + PASSCODE_HELP,
    )
    p.add_argument("csv", metavar="CASES.csv")
    p.add_argument("--skip-broken", action="store_true",
                   help="import the valid rows of a partly broken file and name the broken "
                   "ones")
    p.set_defaults(func=cmd_import)

    p = verbs.add_parser("export", parents=[output, store], help="write every case as CSV")
    p.set_defaults(func=cmd_export)

    p = verbs.add_parser("list", parents=[store],
                         help="count the stored cases, list a page of them and the imports")
    p.add_argument("--limit", type=io.whole_number, default=50,
                   help="cases to list (default 50; 0: all)")
    p.add_argument("--offset", type=io.whole_number, default=0, help="skip this many cases first")
    p.set_defaults(func=cmd_list)

    p = verbs.add_parser("delete", parents=[store, write],
                         help="delete one case (kept in the audit log)",
                         description="Delete one stored case. " + PASSCODE_HELP)
    p.add_argument("case_id", type=io.whole_number, metavar="CASE_ID")
    p.set_defaults(func=cmd_delete)
