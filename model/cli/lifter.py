"""Commands for everyone: ``diagnose``, ``validate``, ``export``, ``where`` and ``app``.

Only light modules are imported at the top: the parser is built on every call, and
``knowpain diagnose`` must stay fast (pandas, the learners and pgmpy are never imported here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from model.cli import io
from model.errors import RefusedError, UsageError, quote

APP_MAIN = Path(__file__).resolve().parent.parent.parent / "app_pages" / "main.py"
#: Streamlit options every ``knowpain app`` starts with (the user's own come after and win).
APP_OPTIONS = ("--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal")


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["node=state", ...]`` -> ``{node: state}``; malformed or repeated nodes refused."""
    evidence: dict[str, str] = {}
    for item in items:
        node, sep, state = item.partition("=")
        node, state = node.strip(), state.strip()
        if not sep or not node or not state:
            raise UsageError(f"evidence {quote(item)} must look like NODE=STATE, "
                             "e.g. max_attempt=yes")
        if node in evidence:
            raise UsageError(f"{quote(node)} is given twice ({evidence[node]!r:.40} and "
                             f"{quote(state)}); give each node once")
        evidence[node] = state
    return evidence


def cmd_diagnose(args: argparse.Namespace) -> int:
    from model.network_model import Model
    from model.service.clinic import lifter_calibration
    from model.text.console import diagnosis_json, diagnosis_text

    cal, _ = lifter_calibration(io.settings(args), args.calibration)
    if args.list_signs:
        for f in cal.red_flags:
            print(f"{f.id:38} {f.level:8} {f.question}")
        return 0
    m = Model(cal)
    flags = dict.fromkeys(m.warning_signs, False) if args.no_warning_signs else {}
    for fid in args.flag or []:
        flags[fid] = True
    d = m.diagnose(parse_assignments(args.evidence), flags)
    if args.json:
        print(json.dumps(diagnosis_json(d, cal), indent=2))
    else:
        print(diagnosis_text(d, cal))
    return 0


def print_checks(results: Sequence, was: dict[str, bool] | None = None) -> int:
    """Print PASS/FAIL per behaviour check (and what changed); return the number failed."""
    was = was or {}
    for r in results:
        note = ""
        if r.id in was and was[r.id] != r.passed:
            note = "  (was passing)" if was[r.id] else "  (was failing)"
        print(f"  {r}{note}")
    failed = sum(not r.passed for r in results)
    if not results:
        print("  (this calibration defines no behaviour checks)")
    elif failed:
        print(f"  {failed} of {len(results)} behaviour check(s) FAIL")
    else:
        print(f"  all {len(results)} behaviour checks pass")
    return failed


def cmd_validate(args: argparse.Namespace) -> int:
    from calibration.loader import load_calibration
    from model.analysis.checks import run_checks
    from model.analysis.network import CalibratedNetwork

    cal = load_calibration(args.file)
    for w in cal.warnings:
        print(f"warning: {w}")
    results = run_checks(CalibratedNetwork(cal))
    failed = print_checks(results)
    if failed:
        raise RefusedError(f"{args.file}: {failed} behaviour check(s) fail (listed above)")
    print(f"{args.file}: valid ({len(cal.nodes)} nodes, {len(results)} behaviour checks pass)")
    return 0


def export(cal, fmt: str, out: str, force: bool, source: str = "") -> None:
    """Write ``cal`` as TOML, BIF or XMLBIF to ``out`` (complete or not at all)."""
    target = Path(out)
    io.check_out(target, force)
    if fmt == "toml":
        from calibration.writer import to_toml

        io.atomic_write(target, to_toml(cal), force=force)
    else:
        from model.inference.pgmpy_adapter import build_network, export_network

        net = build_network(cal.variables, {n: list(s.parents) for n, s in cal.nodes.items()},
                            cal.cpts())
        io.atomic_write(target, lambda tmp: export_network(net, fmt, tmp), force=force)
    print(f"Wrote {target}" + (f" ({source})." if source else "."))


def cmd_export(args: argparse.Namespace) -> int:
    from model.service.clinic import lifter_calibration

    cal, source = lifter_calibration(io.settings(args), args.calibration)
    export(cal, args.format, args.out, args.force, source)
    return 0


def cmd_where(args: argparse.Namespace) -> int:
    from calibration.loader import DATA_DIR, DEFAULT_PATH

    places = {"default": DEFAULT_PATH, "data": DATA_DIR, "store": io.settings(args).store_path,
              "app": APP_MAIN}
    if args.which:
        print(places[args.which])
    else:
        for name, path in places.items():
            print(f"{name:8}{path}")
    return 0


def run_app(streamlit_args: Sequence[str]) -> int:
    """``streamlit run`` on the app shipped inside the package, options passed through."""
    if not APP_MAIN.is_file():
        raise UsageError(f"the app's pages are missing from this installation ({APP_MAIN})")
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP_MAIN), *APP_OPTIONS,
           *streamlit_args]
    if os.name == "posix":
        # streamlit takes over this process, so a stop signal (Ctrl-C, TERM from a service
        # manager) reaches the server itself instead of orphaning it
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, cmd)
    return subprocess.call(cmd)


def add_commands(sub: argparse._SubParsersAction) -> None:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", metavar="PATH",
                       help="the clinic's store file (default: store_path in "
                       ".streamlit/secrets.toml, else $KNOWPAIN_HOME/knowpain.sqlite, else "
                       "the per-user data folder)")
    p = sub.add_parser("diagnose", parents=[store],
                       help="posterior causes, fixes and next questions")
    p.add_argument("evidence", nargs="*", help="NODE=STATE, e.g. training_age=first_sessions")
    p.add_argument("--flag", action="append", metavar="ID",
                   help="a warning sign that applies (repeatable)")
    p.add_argument("--no-warning-signs", action="store_true",
                   help="none of the warning signs apply (besides any given with --flag); "
                   "without it, estimates are withheld until every sign is answered")
    p.add_argument("--list-signs", action="store_true",
                   help="list the warning signs (id, level, question) and exit")
    p.add_argument("--calibration", metavar="FILE",
                   help="calibration TOML (default: the store's active version, else the "
                   "shipped one)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("validate", help="check a calibration file and its behaviour checks")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("export", parents=[store],
                       help="write the network as BIF, XMLBIF or TOML")
    p.add_argument("--format", choices=["bif", "xmlbif", "toml"], required=True)
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--calibration", metavar="FILE",
                   help="calibration TOML (default: what `diagnose` uses)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("where", parents=[store],
                       help="print where the shipped default, the store and the app live")
    p.add_argument("which", nargs="?", choices=["default", "data", "store", "app"],
                   help="print only this path")
    p.set_defaults(func=cmd_where)

    p = sub.add_parser("app", help="start the Streamlit app (options go to streamlit run, "
                       "e.g. knowpain app --server.port 8600)")
    p.set_defaults(func=lambda args: run_app([]))
