"""``knowpain calibration ...``: fit, compare, pool and version calibrations.

Every change to the store goes through :class:`model.service.Clinic` — the same policy the
app's pages call: a save is refused (exit status 3) when the calibration is invalid, fails a
behaviour check or weakens the red-flag screen; writing needs the therapist passcode
(``--passcode-file FILE``, ``$KNOWPAIN_PASSCODE`` or a prompt) and ``--who NAME``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from model.cli import io
from model.cli.lifter import export, print_checks
from model.errors import CaseImportError, InputError, UsageError

if TYPE_CHECKING:
    from calibration.schema import Calibration
    from model.service.refit import Refit

_CV_METRICS = (
    ("log_loss", "log loss"),
    ("brier", "Brier"),
    ("brier_skill", "Brier skill"),
    ("calibration_slope", "calibration slope"),
    ("calibration_intercept", "calibration intercept"),
)


def _resolve(ref: str, args: argparse.Namespace) -> tuple[Calibration, str]:
    """A calibration named by a file path or a stored version id such as ``v3``."""
    from calibration.loader import load_calibration
    from model.service.clinic import Clinic, parse_version_ref

    if Path(ref).is_file():
        return load_calibration(ref), ref
    try:
        parse_version_ref(ref)
    except UsageError:
        raise UsageError(f"{ref[:80]!r}: no such file, and not a version id; give a "
                         "calibration TOML file or a stored version such as v3") from None
    with Clinic.open(io.settings(args)) as clinic:
        version = clinic.version(ref)
        return clinic.calibration(version.id), f"version {version.id}"


def _checks_of(cal: Calibration):
    from model.analysis.checks import run_checks
    from model.analysis.network import CalibratedNetwork

    return run_checks(CalibratedNetwork(cal))


def _print_scenarios(before: Calibration, after: Calibration) -> None:
    from model.network_model import Model
    from model.service.views import scenario_preview

    changes = scenario_preview(Model(before), Model(after))
    if not changes:
        return
    print("\nReference scenarios: P(cause) before -> after")
    width = max(len(after.nodes[c.cause].title) for c in changes) + 2
    last = None
    for c in changes:
        if c.scenario != last:
            print(f"  {c.scenario}: {c.label}")
            last = c.scenario
        title = after.nodes[c.cause].title
        print(f"    {title:<{width}}{100 * c.before:5.1f}% -> {100 * c.after:5.1f}%  "
              f"({100 * c.change:+.1f} points)")


def _print_refit(result: Refit, top: int) -> None:
    name = ("EM (MAP expectation-maximisation" if result.method == "em"
            else "Dirichlet counting (closed form")
    print(f"\nMethod: {name}; {result.reason})")
    if result.method == "em":
        print(f"  iterations: {result.iterations}, converged: "
              f"{'yes' if result.converged else 'NO'}")
        if not result.converged:
            print("  warning: EM stopped before converging; raise --max-iter and refit")
    elif result.n_incomplete:
        print("  note: for each node, cases missing it or a parent are skipped")
    before, after = result.history[0], result.history[-1]
    n = max(result.n_cases, 1)
    print(f"  log-likelihood of the cases: {before:.2f} -> {after:.2f} "
          f"(per case {before / n:.4f} -> {after / n:.4f})")
    print(f"  nodes refitted: {len(result.learned)} of {len(result.base.nodes)}")
    print(f"\nParameters that moved most (top {top}):")
    for m in result.moved[:top]:
        print(f"  {m}")
    if not result.moved:
        print("  none: the cases did not change any number")


def _print_cross_validation(result: Refit) -> None:
    comparison = result.comparison
    if comparison is None:
        print(f"\nHeld-out comparison: {result.cv_problem}.")
        return
    print(f"\nHeld-out comparison ({comparison.n_splits}-fold cross-validation, seed "
          f"{comparison.seed}, {comparison.n_cases} cases; causes hidden and predicted from the "
          "other findings):")
    table = comparison.table().set_index(["cause", "metric"])
    print(f"  {'cause':<22}{'metric':<24}{'before':>9}{'after':>9}  better")
    for cause, b in comparison.before.metrics.items():
        print(f"  {cause:<22}{'adjudicated cases':<24}{b.n:>9}{'':>9}  "
              f"({b.n_positive} with {b.state})")
        for key, label in _CV_METRICS:
            row = table.loc[(cause, key)]
            print(f"  {'':<22}{label:<24}{row['before']:>9.4f}{row['after']:>9.4f}  "
                  f"{row['better']}")
    print("  (log loss and Brier: lower is better; Brier skill > 0 beats the base rate; "
          "calibration slope ideal 1, intercept ideal 0)")


def _print_behaviour(result: Refit) -> None:
    if result.held_back is not None:
        print(f"\nKept the experts' orderings: {result.held_back}.")
    if result.failures:
        print("\nBehaviour checks the cases contradict (saving will be refused):")
        for line in result.failure_lines():
            print(f"  {line}")
    if result.base_failures:
        print(f"\nNote: the base itself fails {', '.join(result.base_failures)}.")


def _fit_base(args: argparse.Namespace, clinic_of) -> tuple[object, str]:
    """The base the refit starts from: ``--base FILE`` as given, ``--base vN`` or nothing
    through the clinic's one rule (the expert calibration behind that version)."""
    from calibration.loader import load_calibration
    from model.service.clinic import RefitBase

    if args.base is not None and Path(args.base).is_file():
        cal = load_calibration(args.base)
        why = f"the file {args.base}"
        if any(n.column_confidence for n in cal.nodes.values()):
            print(f"Note: {args.base} is itself a refit (it carries per-column "
                  "confidences); refitting it from the same cases counts them twice — give "
                  "its expert calibration as --base instead.")
        return RefitBase(cal, None, why), why
    if args.base is not None:
        from model.service.clinic import parse_version_ref

        try:
            parse_version_ref(args.base)
        except UsageError:
            raise UsageError(f"{args.base[:80]!r}: no such file, and not a version id; give "
                             "a calibration TOML file or a stored version such as v3") from None
    base = clinic_of().refit_base(args.base)
    return base, base.why


def cmd_fit(args: argparse.Namespace) -> int:
    """Refit from cases (every stored case, or a CSV file's), report what changed, write the
    TOML and/or save a version."""
    from calibration.cases import read_case_file
    from calibration.writer import to_toml
    from model.service.clinic import Clinic

    if args.out is None and not args.save:
        raise UsageError("say where the refit goes: --out FILE, --save, or both")
    if args.activate and not args.save:
        raise UsageError("--activate makes the saved refit active: use it with --save")
    if args.out is not None:
        io.check_out(Path(args.out), args.force)
    if args.top < 1:
        raise UsageError(f"--top {args.top}: must be at least 1")
    conf = io.settings(args)
    grant = io.grant(args, conf) if args.save else None
    opened: list[Clinic] = []

    def clinic_of() -> Clinic:  # the store is opened only when it is needed
        if not opened:
            opened.append(Clinic(conf, grant))
        return opened[0]

    try:
        base, base_label = _fit_base(args, clinic_of)
        if args.cases is not None:
            cal = base.calibration
            unused = "nothing was refitted"
            try:
                checked = read_case_file(args.cases, cal.variables, cal.causes,
                                         outcome_node=cal.outcome)
            except CaseImportError as exc:
                raise CaseImportError(exc.problems, exc.total, exc.hint, unused) from None
            if checked.broken and not args.skip_broken:
                raise CaseImportError(
                    checked.problems,
                    hint=(f"{len(checked.cases):,} row(s) are valid: add --skip-broken to "
                          "refit from them") if checked.cases else "", outcome=unused)
            from model.service.refit import refit

            labels = [f"row {r}" for r in checked.rows]
            cases_label = f"{len(checked.cases):,} case(s) from {args.cases}"
            if args.skip_broken and checked.broken:
                cases_label += f" ({len(checked.broken):,} broken row(s) skipped)"
            result = refit(cal, list(checked.cases), args.method, folds=args.folds,
                           seed=args.seed, max_iter=args.max_iter, labels=labels,
                           base_label=base_label,
                           base_version=base.version.id if base.version else None,
                           cases_label=cases_label)
        else:
            if clinic_of().case_counts().total == 0:
                raise InputError(
                    f"there are no cases in {clinic_of().path} to refit from: import some "
                    "(knowpain cases import FILE) or give --cases FILE")
            result = clinic_of().refit(args.method, folds=args.folds, seed=args.seed,
                                       max_iter=args.max_iter, base=base)
        print(f"Base: {result.base_label}.")
        print(f"Cases: {result.cases_label}.")
        print(f"  {result.n_incomplete} case(s) with unknown values, {result.n_adjudicated} "
              "with an adjudicated cause.")
        _print_refit(result, args.top)
        _print_scenarios(result.base, result.calibration)
        print("\nBehaviour checks of the refitted calibration:")
        was = {r.id: r.passed for r in _checks_of(result.base)}
        failed = print_checks(_checks_of(result.calibration), was)
        _print_behaviour(result)
        _print_cross_validation(result)
        if args.out is not None:
            io.atomic_write(args.out, to_toml(result.calibration), force=args.force)
            print(f"\nWrote {args.out}.")
        if args.save:
            version = clinic_of().save_refit(result, args.who, args.note,
                                             activate=args.activate)
            print(f"Saved the refit as version {version.id} (a refit of version "
                  f"{version.fitted_from if version.fitted_from is not None else '?'})"
                  f"{' and made it active' if args.activate else ''}.")
        elif failed:
            print(f"Warning: {failed} behaviour check(s) fail; saving will be refused until "
                  "they pass.")
        else:
            print(f"To store it: knowpain calibration fit --save --who NAME (or: knowpain "
                  f"calibration save {args.out} --who NAME --note TEXT)")
    finally:
        for clinic in opened:
            clinic.close()
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Everything that differs between two calibrations (files or versions)."""
    from model.service.views import compare

    a, label_a = _resolve(args.a, args)
    b, label_b = _resolve(args.b, args)
    d = compare(a, b)
    print(f"A: {label_a}\nB: {label_b}")
    print(d)
    return 0


def cmd_pool(args: argparse.Namespace) -> int:
    """Confidence-weighted linear pool of several calibrations of one network."""
    from calibration.pool import pool_calibrations
    from calibration.writer import to_toml
    from model.service.views import compare

    if len(args.calibrations) < 2:
        raise UsageError("pool needs at least two calibrations (files or version ids)")
    if args.weights is not None and len(args.weights) != len(args.calibrations):
        raise UsageError(f"--weights: give {len(args.calibrations)} numbers, one per "
                         f"calibration (got {len(args.weights)})")
    io.check_out(Path(args.out), args.force)
    loaded = [_resolve(ref, args) for ref in args.calibrations]
    pooled = pool_calibrations([c for c, _ in loaded], weights=args.weights)
    weights = args.weights or [1.0] * len(loaded)
    print(f"Pooling {len(loaded)} calibrations (each node weighted by its confidence x weight):")
    for (cal, label), w in zip(loaded, weights, strict=True):
        total = sum(node.confidence for node in cal.nodes.values())
        print(f"  {label}  weight {w:g}, total confidence {total:g}")
    print("Pooled confidence is the sum of the inputs' (an upper bound when the therapists "
          "share sources; lower it by hand if so).")
    d = compare(loaded[0][0], pooled)
    print(f"\nParameters that differ most from {loaded[0][1]}:")
    for c in d.entries.largest(10):
        print(f"  {c}")
    print("\nBehaviour checks of the pooled calibration:")
    failed = print_checks(_checks_of(pooled))
    io.atomic_write(args.out, to_toml(pooled), force=args.force)
    print(f"\nWrote {args.out}.")
    if failed:
        print(f"Warning: {failed} behaviour check(s) fail; saving will be refused.")
    return 0


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def cmd_list(args: argparse.Namespace) -> int:
    """Print every stored version, oldest first; ``*`` marks the active one."""
    from model.service.clinic import Clinic

    with Clinic.open(io.settings(args)) as clinic:
        versions, active = clinic.versions(), clinic.active()
    print(f"Calibration versions in {clinic.path} (* = active: what lifters see):")
    print(f"    {'id':>4}  {'parent':>6}  {'author':<16}  {'created (UTC)':<16}  "
          f"{'sha256':<12}  note")
    for v in versions:
        mark = "*" if v.id == active.id else " "
        parent = "-" if v.parent_id is None else str(v.parent_id)
        print(f"  {mark} {v.id:>4}  {parent:>6}  {_one_line(v.author, 16):<16}  "
              f"{v.created_at:%Y-%m-%d %H:%M}  {v.content_hash[:12]}  {_one_line(v.note, 60)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a stored version (default: the active one)."""
    from model.service.clinic import Clinic

    with Clinic.open(io.settings(args)) as clinic:
        cal = clinic.calibration(args.version)
        version = clinic.version(args.version) if args.version else clinic.active()
        active = clinic.active().id
    export(cal, args.format, args.out, args.force,
           f"version {version.id}" + (", the active one" if version.id == active else ""))
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    """Store a calibration file as a new version, if the save policy allows it."""
    from calibration.loader import parse_calibration
    from model.service.clinic import Clinic

    conf = io.settings(args)
    grant = io.grant(args, conf)
    file = Path(args.file)
    try:
        with file.open("rb") as fh:
            raw = fh.read(_MAX_TOML + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_TOML:
        raise UsageError(f"{file} is larger than {_MAX_TOML:,} bytes; not a calibration")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{file} is not UTF-8 text") from None
    parse_calibration(text, source=str(file))  # a file that is not a calibration: exit 2
    with Clinic.open(conf, grant) as clinic:
        print(f"Behaviour checks of {file}:")
        print_checks(clinic.review(text, source=str(file)).checks)
        version = clinic.save(text, args.who, args.note, activate=args.activate,
                              source=str(file))
        same = [v.id for v in clinic.versions()
                if v.content_hash == version.content_hash and v.id != version.id]
    print(f"Saved {file} as version {version.id} (parent {version.parent_id}, sha256 "
          f"{version.content_hash[:12]}).")
    if same:
        print(f"note: identical content to version(s) {', '.join(map(str, same))}")
    if args.activate:
        print(f"Version {version.id} is now active.")
    else:
        print(f"To use it: knowpain calibration activate {version.id} --who NAME")
    return 0


_MAX_TOML = 5 * 1024 * 1024


def cmd_activate(args: argparse.Namespace) -> int:
    from model.service.clinic import Clinic

    conf = io.settings(args)
    with Clinic.open(conf, io.grant(args, conf)) as clinic:
        previous = clinic.active()
        version = clinic.activate(args.version, args.who)
    if version.id == previous.id:
        print(f"Version {version.id} is already the active calibration; nothing changed.")
    else:
        print(f"Active calibration is now version {version.id} (was {previous.id}).")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from model.service.clinic import Clinic

    conf = io.settings(args)
    with Clinic.open(conf, io.grant(args, conf)) as clinic:
        previous = clinic.active()
        version = clinic.rollback(args.who)
    print(f"Rolled back: active calibration is now version {version.id} (was {previous.id}).")
    return 0


# ---- the parser -----------------------------------------------------------------------------
def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"weights must be finite and >= 0, got {text[:40]}")
    return value


def shared_options() -> dict[str, argparse.ArgumentParser]:
    """Option groups shared by the therapist commands."""
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store", metavar="PATH",
        help="the store file (default: store_path in .streamlit/secrets.toml, else "
        "$KNOWPAIN_HOME/knowpain.sqlite, else the per-user data folder); a new store starts "
        "with the shipped default as version 1")
    write = argparse.ArgumentParser(add_help=False)
    write.add_argument("--who", metavar="NAME", default="",
                       help="who is acting (recorded in the audit log; required to write)")
    write.add_argument("--passcode-file", metavar="FILE",
                       help=f"file whose first line is the therapist passcode (or set "
                       f"{io.PASSCODE_ENV}, or type it at the prompt)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--out", required=True, metavar="FILE", help="file to write")
    output.add_argument("--force", action="store_true", help="replace --out if it exists")
    return {"store": store, "write": write, "output": output}


PASSCODE_HELP = (
    "Commands that change the store need the therapist passcode, configured by whoever runs "
    "knowpain (therapist_passcode in .streamlit/secrets.toml, or the environment variable "
    "KNOWPAIN_THERAPIST_PASSCODE; otherwise they are locked), and --who NAME."
)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``calibration`` and its verbs to the ``knowpain`` parser."""
    opts = shared_options()
    store, write, output = opts["store"], opts["write"], opts["output"]
    cal = sub.add_parser(
        "calibration", help="therapist tools: fit, compare, pool and version calibrations",
        description="Fit, compare, pool and version calibrations. " + PASSCODE_HELP,
    )
    verbs = cal.add_subparsers(dest="calibration_command", required=True, metavar="VERB")

    p = verbs.add_parser(
        "fit", parents=[store, write],
        help="refit the calibration from the stored cases (or a CSV) and report what changed",
        description="Refit from cases (EM when values are missing, Dirichlet counting when "
        "every value is known; noisy-OR / noisy-MAX nodes keep their form), then show the "
        "parameters that moved most, the reference scenarios before -> after, the behaviour "
        "checks and, when cases carry adjudicated causes, held-out metrics before vs after. "
        "A refit starts from the expert calibration behind the active version (never from "
        "an earlier refit) and uses every stored case, so no case counts twice; --cases "
        "FILE refits from that file's cases instead. Write the result to --out, store it as "
        "a new version with --save, or both.",
    )
    p.add_argument("--cases", metavar="CASES.csv",
                   help="refit from this cases CSV instead of the stored cases (columns: "
                   "node names, cause:<cause>, outcome, therapist, case_id)")
    p.add_argument("--skip-broken", action="store_true",
                   help="with --cases: refit from the valid rows of a partly broken file "
                   "(the broken rows are named)")
    p.add_argument("--out", metavar="FILE", help="write the refitted calibration here")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--save", action="store_true",
                   help="store the refit as a new version (needs --who and the passcode)")
    p.add_argument("--note", default="", metavar="TEXT", help="note for --save")
    p.add_argument("--activate", action="store_true", help="with --save: make it active")
    p.add_argument("--base", metavar="CAL",
                   help="calibration to start from: a TOML file, or a stored version id "
                   "(a refit version stands for the expert version it was fitted from; "
                   "default: the expert calibration behind the active version, as in the "
                   "app)")
    p.add_argument("--method", choices=["auto", "dirichlet", "em"], default="auto",
                   help="auto (default): EM when values are missing, else Dirichlet")
    p.add_argument("--folds", type=io.whole_number, default=5, metavar="K",
                   help="folds for the held-out comparison (default 5; 0 skips it)")
    p.add_argument("--seed", type=io.whole_number, default=0,
                   help="seed of the fold split (default 0)")
    p.add_argument("--max-iter", type=io.whole_number, default=100,
                   help="EM iterations at most (100)")
    p.add_argument("--top", type=io.whole_number, default=10, help="moved parameters to show (10)")
    p.set_defaults(func=cmd_fit)

    from model.cli.lifter import cmd_validate

    p = verbs.add_parser("validate", help="check a calibration file and its behaviour checks")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = verbs.add_parser(
        "diff", parents=[store], help="compare two calibrations number by number",
        description="A and B are calibration files or stored version ids (v3 or 3). Lists "
        "the numbers as set, every table entry, and structure, setting and rationale changes.",
    )
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.set_defaults(func=cmd_diff)

    p = verbs.add_parser(
        "export", parents=[output, store],
        help="write the active (or --version) stored calibration as TOML, BIF or XMLBIF",
    )
    p.add_argument("--format", choices=["toml", "bif", "xmlbif"], required=True)
    p.add_argument("--version", metavar="ID", help="version id such as v3 (default: active)")
    p.set_defaults(func=cmd_export)

    p = verbs.add_parser("list", parents=[store], help="list the stored versions")
    p.set_defaults(func=cmd_list)

    p = verbs.add_parser("activate", parents=[store, write],
                         help="make a stored version the one lifters see",
                         description="Make a stored version active. " + PASSCODE_HELP)
    p.add_argument("version", metavar="ID", help="version id such as v3 or 3")
    p.set_defaults(func=cmd_activate)

    p = verbs.add_parser("rollback", parents=[store, write],
                         help="activate the parent of the active version",
                         description="Activate the parent of the active version. "
                         + PASSCODE_HELP)
    p.set_defaults(func=cmd_rollback)

    p = verbs.add_parser(
        "save", parents=[store, write],
        help="validate a calibration file, run its behaviour checks, store it as a new version",
        description="Store a calibration file as a new version (parent: the active one). It "
        "is refused, with every reason, when it is invalid, fails a behaviour check or "
        "weakens the red-flag screen. " + PASSCODE_HELP,
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--note", required=True, metavar="TEXT", help="what changed and why")
    p.add_argument("--activate", action="store_true", help="also make it the active version")
    p.set_defaults(func=cmd_save)

    p = verbs.add_parser(
        "pool", parents=[output, store],
        help="confidence-weighted pool of several calibrations of one network",
    )
    p.add_argument("calibrations", nargs="+", metavar="CAL",
                   help="calibration files or stored version ids (two or more)")
    p.add_argument("--weights", nargs="+", type=_weight, metavar="W",
                   help="one weight per calibration, multiplying its confidence (default 1)")
    p.set_defaults(func=cmd_pool)
