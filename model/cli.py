"""The ``knowpain`` command line.

Usage and input errors exit with status 2 and a message that says what is allowed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from calibration.loader import load_calibration
from calibration.verbal_scale import describe
from model.results import Diagnosis

APP = Path(__file__).resolve().parent.parent / "app.py"


class UsageError(Exception):
    """Bad command-line input; reported on stderr with exit status 2."""


def _parse_assignments(items: Sequence[str]) -> dict[str, str]:
    evidence: dict[str, str] = {}
    for item in items:
        node, sep, state = item.partition("=")
        if not sep or not node or not state:
            raise UsageError(f"evidence {item!r} must look like NODE=STATE, e.g. max_attempt=yes")
        evidence[node.strip()] = state.strip()
    return evidence


def _diagnosis_text(d: Diagnosis, m) -> str:
    cal = m.calibration
    lines = []
    if d.triage.level != "none":
        lines.append(f"WARNING ({d.triage.level.upper()}): {d.triage.message}")
        lines += [f"  - {r}" for r in d.triage.reasons]
        lines.append("")
    if d.triage.blocks_results:
        lines.append("Cause estimates are withheld: see a clinician about the warning sign first.")
    else:
        if d.triage.level == "amber":
            lines.append("The estimates below are less reliable until you have been assessed.")
        lines.append("Likely causes:")
        for c, p in sorted(d.causes.items(), key=lambda kv: -kv[1]):
            iv = d.cause_intervals.get(c)
            band = f", 90 % interval {iv.low:.0%}–{iv.high:.0%}" if iv else ""
            lines.append(
                f"  {cal.nodes[c].title}: {describe(p)}{band}  "
                f"(before your answers: {describe(d.prior_causes[c])})"
            )
        lines.append(d.best_guess)
        if d.fixes:
            lines.append("")
            lines.append("What to change, most helpful first:")
            for f in d.fixes:
                lines.append(
                    f"  {f.title}: chance of soreness next session "
                    f"{describe(f.outcome_before)} -> {describe(f.outcome_after)}"
                )
                if f.cues:
                    lines.append(f"    cues: {'; '.join(f.cues)}")
        if d.next_questions:
            lines.append("")
            lines.append("Worth answering next:")
            for q in d.next_questions[:3]:
                lines.append(f"  {cal.nodes[q.node].question or q.node}  ({q.gain:.2f} bits)")
    lines.append("")
    lines.append(cal.messages.disclaimer)
    return "\n".join(lines)


def lifter_model(calibration: str | None, store: str | None):
    """The calibration lifters see: ``--calibration`` if given, else the store's active
    version when a store exists, else the shipped default (the same rule as the app)."""
    from model.network_model import Model, load_model

    if calibration is None:
        from calibration.loader import parse_calibration
        from calibration.store import active_version_if_any

        version = active_version_if_any(store)
        if version is not None:
            source = f"stored version {version.id}"
            return Model(parse_calibration(version.toml_text, source=source))
    return load_model(calibration)


def cmd_diagnose(args: argparse.Namespace) -> int:
    m = lifter_model(args.calibration, args.store)
    flags = dict.fromkeys(args.flag or [], True)
    d = m.diagnose(_parse_assignments(args.evidence), flags)
    if args.json:
        if d.triage.blocks_results:  # behind a red flag nothing but the routing goes out
            payload = {
                "evidence": d.evidence,
                "triage": asdict(d.triage),
                "withheld": "cause estimates, fixes and questions are withheld: a warning "
                "sign needs a clinician first",
            }
        else:
            payload = asdict(d)
        payload["disclaimer"] = m.calibration.messages.disclaimer
        print(json.dumps(payload, indent=2))
    else:
        print(_diagnosis_text(d, m))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from model.checks import run_checks
    from model.network_model import Model

    cal = load_calibration(args.file)
    for w in cal.warnings:
        print(f"warning: {w}")
    results = run_checks(Model(cal))
    for r in results:
        print(r)
    failed = [r for r in results if not r.passed]
    if failed:
        print(f"{args.file}: {len(failed)} behaviour check(s) failed", file=sys.stderr)
        return 1
    print(f"{args.file}: valid ({len(cal.nodes)} nodes, {len(results)} behaviour checks pass)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if Path(args.out).exists() and not args.force:
        raise UsageError(f"{args.out} exists; pass --force to replace it")
    if args.format == "toml":
        from calibration.writer import to_toml

        Path(args.out).write_text(to_toml(load_calibration(args.calibration)), encoding="utf-8")
    else:
        from model.network_model import load_model
        from model.pgmpy_adapter import export_network

        export_network(load_model(args.calibration).network, args.format, args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    if not APP.exists():
        raise UsageError(
            f"the app lives in the source checkout ({APP} is missing); run `make app` there"
        )
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), *args.streamlit_args]
    return subprocess.call(cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="knowpain",
        description="Why is my low back sore after deadlifts? Decision support, not a diagnosis.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("diagnose", help="posterior causes, fixes and next questions")
    p.add_argument("evidence", nargs="*", help="NODE=STATE, e.g. training_age=first_sessions")
    p.add_argument("--flag", action="append", help="a warning sign answered yes (repeatable)")
    p.add_argument(
        "--calibration",
        help="calibration TOML (default: the store's active version, else the shipped one)",
    )
    p.add_argument("--store", help="calibration store (default: $KNOWPAIN_HOME/knowpain.sqlite)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("validate", help="check a calibration file and its behaviour checks")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("export", help="write the network as BIF, XMLBIF or TOML")
    p.add_argument("--format", choices=["bif", "xmlbif", "toml"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--calibration")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("app", help="start the Streamlit app")
    p.add_argument("streamlit_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_app)

    from model.cli_calibration import add_commands  # here: it imports this module

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `knowpain diagnose ... | head`: the reader went away
        sys.stderr.close()
        return 0
    except (UsageError, ValueError) as exc:  # EvidenceError, CalibrationError, CSV problems
        print(f"knowpain: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        from calibration.store import StoreError

        if not isinstance(exc, StoreError):
            raise
        print(f"knowpain: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"knowpain: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
