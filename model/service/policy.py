"""What may be saved: the one rule every door calls before a calibration becomes a version.

A candidate calibration may be stored only when

1. it is a valid calibration, read back exactly as the store will read it (every problem at
   once, named by node and field);
2. every behaviour check of the domain holds (the orderings any recalibration must keep);
3. its red-flag screen is not weaker than the screens it must protect — the shipped default
   and the version lifters see now: no warning sign or evidence rule dropped, none softened
   from red to amber, no rule's conditions changed.

:func:`review` says all of that without writing anything, so a page can show it live and a
command can print it; :class:`~model.service.clinic.Clinic.save` refuses with the same reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache

from calibration.loader import load_calibration, parse_calibration
from calibration.safety import weakened_screen
from calibration.schema import Calibration
from calibration.writer import to_toml
from model.analysis.checks import CheckResult, run_checks
from model.errors import CalibrationError

__all__ = ["Review", "review", "self_contained", "shipped_default"]


@dataclass(frozen=True)
class Review:
    """The save policy's verdict on a candidate, before anything is stored.

    ``text`` is exactly what would be stored (self-contained: fixes, red flags and checks
    inline); ``calibration`` is that text read back, or ``None`` with the format
    ``problems``; ``checks`` are the behaviour checks' results; ``weakened`` lists the
    red-flag rules the candidate would drop or soften.
    """

    text: str
    calibration: Calibration | None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    checks: tuple[CheckResult, ...] = ()
    weakened: tuple[str, ...] = ()

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.checks if not r.passed)

    @property
    def screen_reasons(self) -> list[str]:
        """The refusal lines about the red-flag screen."""
        return [f"weakens the red-flag screen: {w}" for w in self.weakened]

    @property
    def check_reasons(self) -> list[str]:
        """One line per failing behaviour check: which, which pair, and by how much."""
        from model.service.behaviour import shortfall  # heavy (pandas): only when needed

        specs = {c.id: c for c in self.calibration.checks} if self.calibration else {}
        out = []
        for r in self.failed_checks:
            found = shortfall(specs[r.id], r.values) if r.id in specs else None
            why = found if found is not None else f"{r.id}: {r.detail or r.description}"
            out.append(f"behaviour check fails: {why}")
        return out

    @property
    def reasons(self) -> list[str]:
        """Every reason the candidate would be refused (empty: it may be saved)."""
        out = [f"invalid: {p}" for p in self.problems]
        out += self.check_reasons
        return out + self.screen_reasons

    @property
    def ok(self) -> bool:
        return self.calibration is not None and not self.reasons


def self_contained(cal: Calibration) -> str:
    """The calibration as stored: one TOML text with every companion section inline, so a
    saved version never changes when a file elsewhere does."""
    return to_toml(replace(cal, companions=(), path=None))


@cache
def shipped_default() -> Calibration:
    """The shipped default calibration (version 1 of every new store); read once."""
    return load_calibration()


def review(candidate: Calibration | str, protected: Sequence[Calibration] = (),
           source: str = "the calibration") -> Review:
    """Apply the save policy to ``candidate`` (a calibration, or TOML text as given).

    ``protected`` are the calibrations whose red-flag screens may not be weakened; the
    shipped default is always among them.
    """
    if isinstance(candidate, str):
        try:
            cal = parse_calibration(candidate, source=source)
        except CalibrationError as exc:
            return Review(candidate, None, problems=tuple(exc.problems))
    else:
        cal = candidate
    text = self_contained(cal)
    try:
        stored = parse_calibration(text, source=source)
    except CalibrationError as exc:
        return Review(text, None, problems=tuple(exc.problems))
    from model.analysis.network import CalibratedNetwork

    checks = run_checks(CalibratedNetwork(stored))
    weakened: list[str] = []
    for before in (shipped_default(), *protected):
        weakened += [w for w in weakened_screen(before, stored) if w not in weakened]
    return Review(text, stored, warnings=stored.warnings, checks=checks,
                  weakened=tuple(weakened))
