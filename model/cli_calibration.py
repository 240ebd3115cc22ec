"""Therapist verbs of the ``knowpain`` command line: ``knowpain calibration ...`` and
``knowpain cases ...``.

Calibration files::

    knowpain calibration fit --cases clinic.csv --out refit.toml
    knowpain calibration validate refit.toml
    knowpain calibration diff default.toml refit.toml          (or version ids: v1 v3)
    knowpain calibration pool dr_a.toml dr_b.toml --out pooled.toml

The versioned store (``--store PATH``; default ``$KNOWPAIN_HOME/knowpain.sqlite`` or the
per-user data folder, see :func:`calibration.store.default_store_path`). A new store is seeded
with the shipped default calibration as version 1::

    knowpain calibration list
    knowpain calibration save refit.toml --author "Dr A" --note "refit on 2024 cases"
    knowpain calibration activate v3
    knowpain calibration rollback
    knowpain calibration export --format bif --out clinic.bif [--version v3]
    knowpain cases import clinic.csv --therapist "Dr A"
    knowpain cases export --out all_cases.csv
    knowpain cases list
    knowpain cases delete 17

Therapist passcode
------------------
Commands that write to the store (``save``, ``activate``, ``rollback``, ``cases import``,
``cases delete``) are locked unless whoever runs knowpain has configured a passcode in the
environment variable ``KNOWPAIN_THERAPIST_PASSCODE``. The therapist then gives the passcode
with ``--passcode-file FILE`` (first line of the file), or in the environment variable
``KNOWPAIN_PASSCODE`` (for scripts), or at a hidden prompt when run in a terminal. The
passcode is compared in constant time (:mod:`calibration.access`) and never printed.

Exit status: 0 success; 1 a behaviour check failed (``validate``, ``save``); 2 bad usage,
bad input, a refused passcode or a store problem — the message says what is wrong and what
is allowed.

Only light modules are imported at the top: the parser is built on every ``knowpain`` call,
including ``knowpain diagnose``, which must stay fast. pandas, the learners and pgmpy are
imported inside the commands that need them.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calibration.access import ENV_VAR, AccessError, check_passcode, configured_passcode
from calibration.loader import DATA_DIR, DEFAULT_PATH, load_calibration, parse_calibration
from calibration.safety import weakened_screen
from model.cli import UsageError, cmd_validate

if TYPE_CHECKING:
    import pandas as pd

    from calibration.schema import Calibration
    from calibration.store import CalibrationVersion, Store
    from model.network_model import Model

__all__ = ["PASSCODE_ENV", "add_commands", "atomic_write"]

#: Environment variable a therapist may use to give the passcode non-interactively.
PASSCODE_ENV = "KNOWPAIN_PASSCODE"

_VERSION_ID = re.compile(r"^[vV]?(\d+)$")
_CV_METRICS = (
    ("log_loss", "log loss"),
    ("brier", "Brier"),
    ("brier_skill", "Brier skill"),
    ("calibration_slope", "calibration slope"),
    ("calibration_intercept", "calibration intercept"),
)

Command = Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _reported(func: Command) -> Command:
    """Report this module's usage and access errors as ``knowpain: error: ...``, status 2.

    ``model.cli.main`` maps :class:`~model.cli.UsageError` too, but under
    ``python -m model.cli`` the running module is ``__main__`` and its ``UsageError`` is a
    different class from the one imported here, so the commands map their own.
    """

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (UsageError, AccessError) as exc:
            print(f"knowpain: error: {exc}", file=sys.stderr)
            return 2

    return run


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_out(path: Path, force: bool) -> None:
    """Refuse early (before any work) an output path that cannot or must not be written."""
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: the folder {path.parent} does not exist")
    if path.exists() and not force:
        raise UsageError(
            f"{path} already exists; choose another --out file, or add --force to replace it"
        )


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None] | str,
                 *, force: bool = False) -> Path:
    """Write a file so that it is either complete or absent — never half-written.

    ``write`` is the text, or a function that writes the content to the temporary path it is
    given. The temporary file lives in the target's folder, is fsync'ed, then renamed over
    the target (:func:`os.replace`). Without ``force`` an existing target is never replaced,
    even one that appears while we write (a hard link is used as an atomic no-clobber
    rename where the file system allows it). Raises :class:`~model.cli.UsageError`.
    """
    target = Path(path)
    _check_out(target, force)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        os.close(fd)
        if isinstance(write, str):
            tmp.write_text(write, encoding="utf-8", newline="")
        else:
            write(tmp)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise UsageError(
                    f"{target} already exists; choose another --out file, or add --force"
                ) from None
            except OSError:  # no hard links here (e.g. some network or FAT file systems)
                if target.exists():
                    raise UsageError(f"{target} already exists; add --force to replace it") \
                        from None
                os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _store(args: argparse.Namespace) -> Store:
    """Open ``--store`` (or the default store), seeding a new one with the shipped default."""
    from calibration.store import Store

    return Store(getattr(args, "store", None), seed_toml=DEFAULT_PATH.read_text(encoding="utf-8"))


def _version_number(ref: str) -> int | None:
    match = _VERSION_ID.match(ref.strip())
    return int(match.group(1)) if match else None


def _get_version(store: Store, ref: str) -> CalibrationVersion:
    from calibration.store import NotFoundError

    number = _version_number(ref)
    if number is None:
        raise UsageError(
            f"{ref!r} is not a version id; use a number such as 3 or v3 "
            "(see `knowpain calibration list`)"
        )
    try:
        return store.get_version(number)
    except NotFoundError:
        ids = ", ".join(str(v.id) for v in store.list_versions()) or "none"
        raise UsageError(f"no calibration version {number} in {store.path}; versions: {ids}") \
            from None


def _parse_version(version: CalibrationVersion) -> Calibration:
    """A stored version's calibration; companions resolve to the shipped data folder."""
    return parse_calibration(version.toml_text, source=f"calibration version {version.id}")


def _resolve(ref: str, args: argparse.Namespace) -> tuple[Calibration, str]:
    """A calibration named by a file path or (from ``--store``) a version id like ``v3``."""
    path = Path(ref)
    if path.is_file():
        return load_calibration(path), str(path)
    if _version_number(ref) is not None:
        with _store(args) as store:
            version = _get_version(store, ref)
            return _parse_version(version), f"version {version.id}"
    raise UsageError(
        f"{ref!r}: no such file, and not a version id; give a calibration TOML file or a "
        "stored version such as v3 (with --store PATH)"
    )


def _who(args: argparse.Namespace) -> str:
    who = (getattr(args, "who", None) or "").strip()
    if who:
        return who
    try:
        return getpass.getuser()
    except Exception:  # no login name available (containers, services)
        raise UsageError("cannot tell who you are; give --who NAME") from None


def _read_passcode_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--passcode-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--passcode-file {path}: cannot read it ({type(exc).__name__})") \
            from None
    lines = text.splitlines()
    return lines[0] if lines else ""


def _supplied_passcode(args: argparse.Namespace) -> str:
    """The passcode the user gives: --passcode-file, then $KNOWPAIN_PASSCODE, then a prompt."""
    file = getattr(args, "passcode_file", None)
    if file:
        return _read_passcode_file(Path(file))
    from_env = os.environ.get(PASSCODE_ENV)
    if from_env:
        return from_env
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            return getpass.getpass("Therapist passcode: ")
        except (EOFError, KeyboardInterrupt):
            return ""
    raise UsageError(
        "this command changes the store and needs the therapist passcode: give it with "
        f"--passcode-file FILE, in the environment variable {PASSCODE_ENV}, or run the command "
        "in a terminal to be asked for it"
    )


def require_therapist(args: argparse.Namespace) -> None:
    """Refuse (:class:`~model.cli.UsageError`) unless the therapist passcode is given."""
    expected = configured_passcode()
    if expected is None:
        try:
            check_passcode("", None)
        except AccessError as exc:
            raise UsageError(
                f"{exc} For example, in the shell that runs knowpain: "
                f"export {ENV_VAR}='choose-a-passcode'"
            ) from None
    try:
        check_passcode(_supplied_passcode(args), expected)
    except AccessError as exc:
        raise UsageError(str(exc)) from None


def _model(cal: Calibration) -> Model:
    from model.network_model import Model

    return Model(cal)


def _present(model: Model, cause: str) -> str:
    return model.variables[cause][model.present_index(cause)]


def _pct(p: float) -> str:
    return f"{100 * p:5.1f}%"


def _print_checks(after: Model, before: Model | None = None) -> int:
    """Print PASS/FAIL per behaviour check (and what changed); return the number failed."""
    from model.checks import run_checks

    results = run_checks(after)
    was = {r.id: r.passed for r in run_checks(before)} if before is not None else {}
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


# --------------------------------------------------------------------------------------------
# calibration fit
# --------------------------------------------------------------------------------------------


def _log_likelihood(cal: Calibration, frame: pd.DataFrame) -> float:
    """Σ log P(case evidence) under ``cal`` (one batched exact query, via EM's E-step)."""
    from model.learn import EMRefit

    return float(EMRefit(cal, max_iter=0).fit(frame).log_likelihood_)


def _print_scenarios(before: Model, after: Model) -> None:
    scenarios = before.calibration.scenarios
    if not scenarios:
        return
    print("\nReference scenarios: P(cause) before -> after")
    width = max((len(before.calibration.nodes[c].title) for c in before.causes), default=0) + 2
    for sc in scenarios:
        print(f"  {sc.id}: {sc.label}" if sc.label else f"  {sc.id}")
        try:
            pb, pa = before.posterior(sc.evidence), after.posterior(sc.evidence)
        except ValueError as exc:  # impossible evidence under one of them
            print(f"    (not computed: {exc})")
            continue
        for c in before.causes:
            if c not in pb:
                continue
            state = _present(before, c)
            b, a = pb[c][state], pa[c][state]
            title = before.calibration.nodes[c].title
            print(f"    {title:<{width}}{_pct(b)} -> {_pct(a)}  ({100 * (a - b):+.1f} points)")


def _print_cross_validation(comparison: Any) -> None:
    print(
        f"\nHeld-out comparison ({comparison.n_splits}-fold cross-validation, seed "
        f"{comparison.seed}, {comparison.n_cases} cases; causes hidden and predicted from the "
        "other findings):"
    )
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


@_reported
def cmd_fit(args: argparse.Namespace) -> int:
    """Refit a calibration from a cases CSV, report what changed, write the new TOML."""
    out = Path(args.out)
    _check_out(out, args.force)
    if args.folds != 0 and args.folds < 2:
        raise UsageError(f"--folds {args.folds}: use 0 to skip the held-out comparison, or 2 "
                         "or more folds")
    if args.max_iter < 1:
        raise UsageError(f"--max-iter {args.max_iter}: must be at least 1")
    if args.top < 1:
        raise UsageError(f"--top {args.top}: must be at least 1")
    if args.base is None:
        base, base_label = load_calibration(DEFAULT_PATH), "the shipped default"
    else:
        base, base_label = _resolve(args.base, args)

    from calibration.cases import read_cases_csv
    from calibration.writer import to_toml
    from model.inference.engine import ImpossibleEvidenceError
    from model.learn import DirichletRefit, EMRefit, case_frame, moved_parameters

    cases = read_cases_csv(args.cases, base.variables, base.causes, outcome_node=base.outcome)
    frame = case_frame(cases, base)
    nodes = list(base.nodes)
    missing = bool(frame[nodes].isna().to_numpy().any())
    adjudicated = [c for c in base.causes if frame[c].notna().any()]
    n_adjudicated = int(frame[base.causes].notna().any(axis=1).sum()) if base.causes else 0
    method = args.method
    if method == "auto":
        method = "em" if missing else "dirichlet"
    print(f"Read {len(frame)} case(s) from {args.cases}; base calibration: {base_label}.")
    print(f"  {int(frame[nodes].isna().any(axis=1).sum())} case(s) with unknown values, "
          f"{n_adjudicated} with an adjudicated cause.")

    try:
        if method == "em":
            estimator: Any = EMRefit(base, max_iter=args.max_iter)
            est = estimator.fit(frame)
            why = "values are missing" if missing else "chosen with --method em"
            print(f"\nMethod: EM (MAP expectation-maximisation; {why})")
            print(f"  iterations: {est.n_iter_} (at most {args.max_iter}), converged: "
                  f"{'yes' if est.converged_ else 'NO'}")
            before_ll, after_ll = est.history_[0], est.log_likelihood_
            if not est.converged_:
                print("  warning: EM stopped before converging; raise --max-iter and refit")
        else:
            estimator = DirichletRefit(base)
            est = estimator.fit(frame)
            why = "every value is known" if not missing else "chosen with --method dirichlet"
            print(f"\nMethod: Dirichlet counting ({why}; closed form, no iterations)")
            if missing:
                print("  note: for each node, cases missing it or a parent are skipped")
            before_ll, after_ll = _log_likelihood(base, frame), _log_likelihood(
                est.calibration_, frame)
    except ImpossibleEvidenceError as exc:
        raise UsageError(str(exc)) from None
    new = est.calibration_
    n = max(len(frame), 1)
    print(f"  log-likelihood of the cases: {before_ll:.2f} -> {after_ll:.2f} "
          f"(per case {before_ll / n:.4f} -> {after_ll / n:.4f})")
    print(f"  nodes refitted: {len(est.learned_)} of {len(nodes)}")

    moved = moved_parameters(base, new, top=args.top)
    print(f"\nParameters that moved most (top {args.top}):")
    for m in moved:
        print(f"  {m}")
    if not moved:
        print("  none: the cases did not change any number")

    before_model, after_model = _model(base), _model(new)
    _print_scenarios(before_model, after_model)
    print("\nBehaviour checks of the refitted calibration:")
    failed = _print_checks(after_model, before_model)

    if args.folds == 0:
        print("\nHeld-out comparison skipped (--folds 0).")
    elif not adjudicated:
        print("\nHeld-out comparison skipped: no case has an adjudicated cause "
              f"(add columns such as cause:{base.causes[0] if base.causes else 'NODE'}).")
    elif len(frame) < args.folds:
        print(f"\nHeld-out comparison skipped: {len(frame)} case(s) cannot be split into "
              f"{args.folds} folds (use --folds 2..{len(frame)} or 0).")
    else:
        from model.evaluate import cross_validate

        try:
            comparison = cross_validate(frame, type(estimator)(**estimator.get_params()),
                                        n_splits=args.folds, seed=args.seed)
        except ImpossibleEvidenceError as exc:
            raise UsageError(f"held-out comparison failed: {exc}") from None
        _print_cross_validation(comparison)

    text = to_toml(new)
    parse_calibration(text, base_dir=out.parent, source=str(out))  # never write an invalid file
    atomic_write(out, text, force=args.force)
    print(f"\nWrote {out}.")
    if failed:
        print(f"Warning: {failed} behaviour check(s) fail; `knowpain calibration save` will "
              "refuse this file until they pass.")
    else:
        print(f"To store it: knowpain calibration save {out} --author NAME --note TEXT")
    return 0


# --------------------------------------------------------------------------------------------
# calibration files: validate, diff, pool
# --------------------------------------------------------------------------------------------


@_reported
def cmd_calibration_validate(args: argparse.Namespace) -> int:
    """Same as ``knowpain validate FILE``."""
    return cmd_validate(args)


@_reported
def cmd_diff(args: argparse.Namespace) -> int:
    """Print every parameter that differs between two calibrations (files or versions)."""
    from calibration.diff import diff_calibrations

    a, label_a = _resolve(args.a, args)
    b, label_b = _resolve(args.b, args)
    d = diff_calibrations(a, b)
    print(f"A: {label_a}\nB: {label_b}")
    print(d)
    if d.parameters:
        print(f"{len(d.parameters)} parameter(s) differ; largest change: {d.largest(1)[0]}")
    return 0


@_reported
def cmd_pool(args: argparse.Namespace) -> int:
    """Confidence-weighted linear pool of several calibrations of one network."""
    from calibration.diff import diff_calibrations
    from calibration.pool import pool_calibrations
    from calibration.writer import to_toml

    if len(args.calibrations) < 2:
        raise UsageError("pool needs at least two calibrations (files or version ids)")
    if args.weights is not None and len(args.weights) != len(args.calibrations):
        raise UsageError(f"--weights: give {len(args.calibrations)} numbers, one per "
                         f"calibration (got {len(args.weights)})")
    out = Path(args.out)
    _check_out(out, args.force)
    loaded = [_resolve(ref, args) for ref in args.calibrations]
    try:
        pooled = pool_calibrations([c for c, _ in loaded], weights=args.weights)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    weights = args.weights or [1.0] * len(loaded)
    print(f"Pooling {len(loaded)} calibrations (each node weighted by its confidence x weight):")
    for (cal, label), w in zip(loaded, weights, strict=True):
        total = sum(node.confidence for node in cal.nodes.values())
        print(f"  {label}  weight {w:g}, total confidence {total:g}")
    print("Pooled confidence is the sum of the inputs' (an upper bound when the therapists "
          "share sources; lower it by hand if so).")
    d = diff_calibrations(loaded[0][0], pooled)
    print(f"\nParameters that differ most from {loaded[0][1]}:")
    for c in d.largest(10):
        print(f"  {c}")
    print("\nBehaviour checks of the pooled calibration:")
    failed = _print_checks(_model(pooled))
    text = to_toml(pooled)
    parse_calibration(text, base_dir=out.parent, source=str(out))
    atomic_write(out, text, force=args.force)
    print(f"\nWrote {out}.")
    if failed:
        print(f"Warning: {failed} behaviour check(s) fail; `save` will refuse this file.")
    return 0


# --------------------------------------------------------------------------------------------
# the store: list, export, save, activate, rollback
# --------------------------------------------------------------------------------------------


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@_reported
def cmd_list(args: argparse.Namespace) -> int:
    """Print every stored version, oldest first; ``*`` marks the active one."""
    with _store(args) as store:
        versions = store.list_versions()
        active = store.active_version()
    print(f"Calibration versions in {store.path} (* = active):")
    print(f"    {'id':>4}  {'parent':>6}  {'author':<16}  {'created (UTC)':<16}  "
          f"{'sha256':<12}  note")
    for v in versions:
        mark = "*" if active is not None and v.id == active.id else " "
        parent = "-" if v.parent_id is None else str(v.parent_id)
        print(f"  {mark} {v.id:>4}  {parent:>6}  {_one_line(v.author, 16):<16}  "
              f"{v.created_at:%Y-%m-%d %H:%M}  {v.content_hash[:12]}  {_one_line(v.note, 60)}")
    return 0


@_reported
def cmd_export(args: argparse.Namespace) -> int:
    """Write the active (or ``--version``) stored calibration as TOML, BIF or XMLBIF."""
    out = Path(args.out)
    _check_out(out, args.force)
    with _store(args) as store:
        if args.version is not None:
            version = _get_version(store, args.version)
        else:
            version = store.active_version()
            if version is None:  # pragma: no cover - a seeded store always has one
                raise UsageError(f"{store.path} has no active version")
    cal = _parse_version(version)
    if args.format == "toml":
        atomic_write(out, version.toml_text, force=args.force)  # verbatim, comments kept
    else:
        from model.pgmpy_adapter import export_network

        network = _model(cal).network
        atomic_write(out, lambda tmp: export_network(network, args.format, tmp),
                     force=args.force)
    print(f"Wrote version {version.id} as {args.format.upper()} to {out}.")
    return 0


def _companion_notes(file: Path, cal: Calibration) -> list[str]:
    """Companions next to ``file`` that differ from the shipped ones (the store uses those)."""
    notes = []
    for name in cal.companions:
        local, shipped = file.parent / name, DATA_DIR / name
        if (
            local.is_file()
            and shipped.is_file()
            and local.resolve() != shipped.resolve()
            and local.read_bytes() != shipped.read_bytes()
        ):
            notes.append(
                f"note: {local} differs from the shipped {name}; stored versions use the "
                "shipped companion files, so the behaviour checks run against those"
            )
    return notes


@_reported
def cmd_save(args: argparse.Namespace) -> int:
    """Validate a calibration file, run its behaviour checks, and store it as a new version."""
    from model.checks import run_checks

    require_therapist(args)
    file = Path(args.file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {exc}") from None
    # validated exactly as the store will read it back
    cal = parse_calibration(text, source=str(file))
    for note in _companion_notes(file, cal):
        print(note)
    results = run_checks(_model(cal))
    failed = [r for r in results if not r.passed]
    if failed:
        for r in failed:
            print(f"  {r}", file=sys.stderr)
        print(f"knowpain: refused: {file} fails {len(failed)} of {len(results)} behaviour "
              "check(s) (listed above); nothing was stored. Fix the numbers and save again.",
              file=sys.stderr)
        return 1
    with _store(args) as store:
        active = store.active_version()
        if active is not None:
            weakened = weakened_screen(parse_calibration(active.toml_text), cal)
            if weakened:
                for line in weakened:
                    print(f"  {line}", file=sys.stderr)
                print(f"knowpain: refused: {file} would weaken the red-flag screen of the "
                      f"active version {active.id} (listed above); nothing was stored.",
                      file=sys.stderr)
                return 1
        same = [v.id for v in store.list_versions() if v.content_hash == _hash(text)]
        version = store.add_version(text, author=args.author, note=args.note,
                                    activate=args.activate)
    print(f"Saved {file} as version {version.id} (parent {version.parent_id}, sha256 "
          f"{version.content_hash[:12]}); {len(results)} behaviour checks pass.")
    if same:
        print(f"note: identical content to version(s) {', '.join(map(str, same))}")
    if args.activate:
        print(f"Version {version.id} is now active.")
    else:
        print(f"To use it: knowpain calibration activate {version.id}")
    return 0


def _hash(text: str) -> str:
    from calibration.store import content_hash

    return content_hash(text)


@_reported
def cmd_activate(args: argparse.Namespace) -> int:
    """Make a stored version the active one."""
    require_therapist(args)
    who = _who(args)
    with _store(args) as store:
        version = _get_version(store, args.version)
        previous = store.active_version()
        store.activate(version.id, who=who)
    was = f" (was {previous.id})" if previous is not None else ""
    print(f"Active calibration is now version {version.id}{was}.")
    return 0


@_reported
def cmd_rollback(args: argparse.Namespace) -> int:
    """Activate the parent of the active version."""
    require_therapist(args)
    who = _who(args)
    with _store(args) as store:
        previous = store.active_version()
        version = store.rollback(who=who)
    was = f" (was {previous.id})" if previous is not None else ""
    print(f"Rolled back: active calibration is now version {version.id}{was}.")
    return 0


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


def _active_calibration(store: Store) -> Calibration:
    version = store.active_version()
    if version is None:  # pragma: no cover - a seeded store always has one
        raise UsageError(f"{store.path} has no active calibration version")
    return _parse_version(version)


@_reported
def cmd_cases_import(args: argparse.Namespace) -> int:
    """Validate a cases CSV against the active calibration and store every case, or none."""
    from calibration.cases import read_cases_csv

    require_therapist(args)
    with _store(args) as store:
        cal = _active_calibration(store)
        cases = read_cases_csv(args.csv, cal.variables, cal.causes, outcome_node=cal.outcome)
        ids = store.add_cases(cases, therapist=args.therapist)
    span = f"{ids[0]}" if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"
    print(f"Imported {len(ids)} case(s) from {args.csv} into {store.path} (ids {span}).")
    return 0


@_reported
def cmd_cases_export(args: argparse.Namespace) -> int:
    """Write every stored case as CSV (the format ``cases import`` reads)."""
    from calibration.cases import cases_to_csv

    out = Path(args.out)
    _check_out(out, args.force)
    with _store(args) as store:
        cal = _active_calibration(store)
        cases = store.list_cases()
    text = cases_to_csv(cases, variables=cal.variables, causes=cal.causes,
                        outcome_node=cal.outcome)
    atomic_write(out, text, force=args.force)
    print(f"Wrote {len(cases)} case(s) to {out}.")
    return 0


@_reported
def cmd_cases_list(args: argparse.Namespace) -> int:
    """Print the stored cases, oldest first."""
    with _store(args) as store:
        cases = store.list_cases()
    print(f"{len(cases)} case(s) in {store.path}:")
    for c in cases:
        causes = ", ".join(f"{k}={v}" for k, v in c.adjudicated.items()) or "-"
        print(f"  {c.id:>5}  {c.created_at:%Y-%m-%d %H:%M}  {_one_line(c.therapist, 16):<16}  "
              f"{len(c.evidence):>2} finding(s)  causes: {causes}  outcome: {c.outcome or '-'}")
    return 0


@_reported
def cmd_cases_delete(args: argparse.Namespace) -> int:
    """Delete one stored case (its content is kept in the audit log)."""
    from calibration.store import NotFoundError

    require_therapist(args)
    who = _who(args)
    with _store(args) as store:
        try:
            store.delete_case(args.case_id, who=who)
        except NotFoundError:
            raise UsageError(f"no case {args.case_id} in {store.path}; see "
                             "`knowpain cases list`") from None
    print(f"Deleted case {args.case_id} (its content is kept in the audit log).")
    return 0


# --------------------------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------------------------

_PASSCODE_HELP = (
    f"Commands that change the store need the therapist passcode. It must be configured in "
    f"the environment variable {ENV_VAR} (otherwise they are locked); give it with "
    f"--passcode-file FILE, the environment variable {PASSCODE_ENV}, or at the prompt."
)


def _positive_or_zero(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"weights must be finite and >= 0, got {text}")
    return value


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``calibration`` and ``cases`` (with their verbs) to the ``knowpain`` parser."""
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store", metavar="PATH",
        help="the store file (default: $KNOWPAIN_HOME/knowpain.sqlite, or knowpain.sqlite in "
        "the per-user data folder); a new store starts with the shipped default as version 1",
    )
    access = argparse.ArgumentParser(add_help=False)
    access.add_argument(
        "--passcode-file", metavar="FILE",
        help=f"file whose first line is the therapist passcode (or set {PASSCODE_ENV}, or "
        "type it at the prompt)",
    )
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument("--who", metavar="NAME", help="your name for the audit log "
                     "(default: your login name)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--out", required=True, metavar="FILE", help="file to write")
    output.add_argument("--force", action="store_true", help="replace --out if it exists")

    cal = sub.add_parser(
        "calibration", help="therapist tools: fit, compare, pool and version calibrations",
        description="Fit, compare, pool and version calibrations. " + _PASSCODE_HELP,
    )
    verbs = cal.add_subparsers(dest="calibration_command", required=True, metavar="VERB")

    p = verbs.add_parser(
        "fit", parents=[output, store],
        help="refit a calibration from a cases CSV and report what changed",
        description="Refit from cases (EM when values are missing, Dirichlet counting when "
        "every value is known), then show the parameters that moved most, the reference "
        "scenarios before -> after, the behaviour checks and, when cases carry adjudicated "
        "causes, held-out metrics before vs after; write the new calibration to --out.",
    )
    p.add_argument("--cases", required=True, metavar="CASES.csv",
                   help="cases CSV (columns: node names, cause:<cause>, outcome, therapist, "
                   "case_id)")
    p.add_argument("--base", metavar="CAL",
                   help="calibration to start from: a TOML file, or a version id like v3 "
                   "from --store (default: the shipped default)")
    p.add_argument("--method", choices=["auto", "dirichlet", "em"], default="auto",
                   help="auto (default): EM when values are missing, else Dirichlet")
    p.add_argument("--folds", type=_positive_or_zero, default=5, metavar="K",
                   help="folds for the held-out comparison (default 5; 0 skips it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold split (default 0)")
    p.add_argument("--max-iter", type=int, default=100, help="EM iterations at most (100)")
    p.add_argument("--top", type=int, default=10, help="moved parameters to show (10)")
    p.set_defaults(func=cmd_fit)

    p = verbs.add_parser("validate", help="check a calibration file and its behaviour checks")
    p.add_argument("file")
    p.set_defaults(func=cmd_calibration_validate)

    p = verbs.add_parser(
        "diff", parents=[store], help="compare two calibrations parameter by parameter",
        description="A and B are calibration files or stored version ids (v3 or 3, from "
        "--store).",
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

    p = verbs.add_parser(
        "activate", parents=[store, access, who], help="make a stored version the active one",
        description="Make a stored version the active one. " + _PASSCODE_HELP,
    )
    p.add_argument("version", metavar="ID", help="version id such as v3 or 3")
    p.set_defaults(func=cmd_activate)

    p = verbs.add_parser(
        "rollback", parents=[store, access, who],
        help="activate the parent of the active version",
        description="Activate the parent of the active version. " + _PASSCODE_HELP,
    )
    p.set_defaults(func=cmd_rollback)

    p = verbs.add_parser(
        "save", parents=[store, access],
        help="validate a calibration file, run its behaviour checks, store it as a new version",
        description="Store a calibration file as a new version (parent: the active one). A "
        "file that is invalid or fails a behaviour check is refused with the reasons. "
        + _PASSCODE_HELP,
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--author", required=True, metavar="NAME", help="who made this version")
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

    cases = sub.add_parser(
        "cases", help="therapist tools: import, export and list recorded cases",
        description="Recorded cases in the store. " + _PASSCODE_HELP,
    )
    verbs = cases.add_subparsers(dest="cases_command", required=True, metavar="VERB")

    p = verbs.add_parser(
        "import", parents=[store, access],
        help="store every case of a CSV file, or none if any row is invalid",
        description="Validate a cases CSV against the active calibration and store all its "
        "cases in one transaction; any problem (listed by row and column) stores nothing. "
        + _PASSCODE_HELP,
    )
    p.add_argument("csv", metavar="CASES.csv")
    p.add_argument("--therapist", required=True, metavar="NAME",
                   help="who is importing (and the therapist of rows without one)")
    p.set_defaults(func=cmd_cases_import)

    p = verbs.add_parser("export", parents=[output, store], help="write every case as CSV")
    p.set_defaults(func=cmd_cases_export)

    p = verbs.add_parser("list", parents=[store], help="list the stored cases")
    p.set_defaults(func=cmd_cases_list)

    p = verbs.add_parser(
        "delete", parents=[store, access, who], help="delete one case (kept in the audit log)",
        description="Delete one stored case. " + _PASSCODE_HELP,
    )
    p.add_argument("case_id", type=int, metavar="CASE_ID")
    p.set_defaults(func=cmd_cases_delete)

