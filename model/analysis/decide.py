"""What to do next: which question tells the most, and which fix helps the most."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from model.analysis.network import FORECAST_DRAWS
from model.analysis.twin import intervenable, next_name
from model.inference.batching import entropy, one_hot, stack_rows
from model.results import Advice, Fix, Forecast, Interval, Question

if TYPE_CHECKING:
    from model.analysis.network import CalibratedNetwork


def next_questions(
    net: CalibratedNetwork,
    likelihoods: Mapping[str, np.ndarray],
    marginals: Mapping[str, np.ndarray],
) -> tuple[Question, ...]:
    """Unanswered observable nodes ranked by expected information gain (bits) about the
    joint of the causes."""
    candidates = [n for n in net.observable if n not in likelihoods]
    if not candidates or not net.causes:
        return ()
    rows = [dict(likelihoods)]
    index: list[tuple[str, int]] = []
    for n in candidates:
        for s in range(net.cards[n]):
            rows.append({**likelihoods, n: one_hot(net.cards[n], s)})
            index.append((n, s))
    res = net.backend.query(stack_rows(rows, net.cards), raise_on_impossible=False)
    joint = res.joints[tuple(net.causes)]
    flat = joint.reshape(joint.shape[0], -1)
    h = entropy(np.nan_to_num(flat), axis=1)
    gains: dict[str, float] = dict.fromkeys(candidates, float(h[0]))
    for row, (n, s) in enumerate(index, start=1):
        p_answer = float(marginals[n][s])
        if p_answer > 0:
            gains[n] -= p_answer * float(h[row])
    out = []
    for n in candidates:
        probs = {st: float(p) for st, p in zip(net.variables[n], marginals[n], strict=True)}
        out.append(
            Question(
                node=n,
                gain=max(gains[n], 0.0),
                likely_answer=max(probs, key=probs.__getitem__),
                answer_probabilities=probs,
            )
        )
    out.sort(key=lambda q: -q.gain)
    return tuple(out)


@dataclass(frozen=True)
class Plan:
    """What to do next: the no-change forecast, the fixes and the advice."""

    forecast: Forecast | None
    fixes: tuple[Fix, ...]
    advice: tuple[Advice, ...]


def outcome_status(net: CalibratedNetwork, hard: Mapping[str, str]) -> str:
    """``present``, ``absent`` or ``unanswered``: the outcome node as answered."""
    cal = net.calibration
    if cal.outcome is None or cal.outcome not in hard:
        return "unanswered"
    return "absent" if hard[cal.outcome] == cal.outcome_absent else "present"


def _interval(samples: np.ndarray, level: float = 0.9) -> Interval | None:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return Interval(float(np.percentile(samples, lo)), float(np.percentile(samples, hi)), level)


def _advice(net: CalibratedNetwork, level: str, status: str, causes: Mapping[str, float]
            ) -> tuple[Advice, ...]:
    out = []
    top = max(causes, key=causes.__getitem__) if causes else None
    for spec in net.calibration.advice:
        if spec.triage != level or spec.outcome not in (status, "any"):
            continue
        if spec.cause is not None and (
                causes.get(spec.cause, 0.0) < spec.min_probability
                or (spec.top and spec.cause != top)):
            continue
        if any(causes.get(c, 0.0) > bound for c, bound in spec.max_other.items()):
            continue
        out.append(Advice(spec.id, spec.title, spec.text, spec.source))
    return tuple(out)


def plan(
    net: CalibratedNetwork,
    likelihoods: Mapping[str, np.ndarray],
    hard: Mapping[str, str],
    level: str,
    causes: Mapping[str, float],
    intervals: bool = True,
) -> Plan:
    """The advice for one answer set, and — when soreness was reported and no warning sign
    fired — the next-session forecast and the fixes ranked by how much they lower it."""
    status = outcome_status(net, hard)
    advice = _advice(net, level, status, causes)
    cal = net.calibration
    if level != "none" or status != "present" or cal.outcome is None:
        return Plan(None, (), advice)
    twin = net.twin
    specs = [f for f in cal.fixes.values()
             if f.target in intervenable(twin, [f.target]) and hard.get(f.target) != f.good_state]
    without = {n: v for n, v in likelihoods.items() if n != cal.outcome}
    now = 1.0 - float(net.backend.query(without).marginals[cal.outcome][0, _absent(net)])
    # point estimates for every fix, then parameter draws for the no-change forecast and the
    # fixes that count (the draws are the expensive part: one batch of draws per row)
    point = _forecast(net, likelihoods, twin.tables(net.cpts), [None, *specs], batch=False)
    effects = point[0] - point[1:]
    counted = [s for s, e in zip(specs, effects, strict=True)
               if e >= cal.fix_policy.min_effect]
    samples: dict[str | None, np.ndarray] = {}
    if intervals:
        draws = {n: t[:FORECAST_DRAWS] for n, t in net.draws.items()}
        drawn = _forecast(net, likelihoods, twin.tables(draws, batch=True),
                          [None, *counted], batch=True)
        samples = {key: drawn[k] for k, key in enumerate([None, *(s.target for s in counted)])}
    forecast = Forecast(now=now, next=float(point[0]),
                        interval=_interval(samples[None]) if samples else None)
    fixes = []
    for spec, after in zip(specs, point[1:], strict=True):
        effect = float(point[0] - after)
        if effect <= 1e-6:
            continue
        drawn_after = samples.get(spec.target)
        fixes.append(Fix(
            target=spec.target, good_state=spec.good_state, title=spec.title, effect=effect,
            outcome_before=float(point[0]), outcome_after=float(after), cues=spec.cues,
            drills=spec.drills, advice=spec.advice, source=spec.source,
            minor=effect < cal.fix_policy.min_effect,
            after_interval=_interval(drawn_after) if drawn_after is not None else None,
            effect_interval=(_interval(samples[None] - drawn_after)
                             if drawn_after is not None else None),
        ))
    fixes.sort(key=lambda f: (f.minor, -f.effect))
    return Plan(forecast, tuple(fixes), advice)


def _forecast(net: CalibratedNetwork, likelihoods: Mapping[str, np.ndarray],
              tables: Mapping[str, np.ndarray], rows: list, batch: bool) -> np.ndarray:
    """P(outcome present at the next session) for each row: ``None`` is no change, a fix
    spec sets its target's next-session copy. With ``batch`` the tables carry a leading axis
    of parameter draws and the result is ``(rows, draws)``; else ``(rows,)``."""
    twin = net.twin
    reps = len(rows)
    overrides = {}
    for n, table in tables.items():
        stacked = np.broadcast_to(table, (reps, *table.shape))
        for r, spec in enumerate(rows):
            if spec is not None and n == next_name(spec.target):
                stacked = np.array(stacked)
                stacked[r] = twin.do_table(spec.target, spec.good_state)
        overrides[n] = stacked.reshape(-1, *table.shape[1 if batch else 0:])
    # the evidence is the same in every row: the engine broadcasts it over the batch
    res = net.twin_backend.query(dict(likelihoods), overrides, raise_on_impossible=False)
    sore = 1.0 - res.marginals[next_name(net.calibration.outcome)][:, _absent(net)]
    return sore.reshape(reps, -1) if batch else sore


def _absent(net: CalibratedNetwork) -> int:
    cal = net.calibration
    return net.variables[cal.outcome].index(cal.outcome_absent)
