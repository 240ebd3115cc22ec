"""What to do next: which question tells the most, and which fix helps the most."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from model.analysis.twin import next_name
from model.inference.batching import entropy, one_hot, stack_rows
from model.results import Fix, Question

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


def rank_fixes(
    net: CalibratedNetwork, likelihoods: Mapping[str, np.ndarray], hard: Mapping[str, str]
) -> tuple[Fix, ...]:
    """Fixes that apply, ranked by the drop in P(outcome != absent) at the next session."""
    cal = net.calibration
    if cal.outcome is None or not cal.fixes:
        return ()
    specs = [f for f in cal.fixes.values() if hard.get(f.target) != f.good_state]
    if not specs:
        return ()
    twin = net.twin
    size = len(specs) + 1
    overrides = {}
    for i, spec in enumerate(specs, start=1):
        name = next_name(spec.target)
        table = np.broadcast_to(twin.cpts[name], (size, *twin.cpts[name].shape)).copy()
        table[i] = twin.do_table(spec.target, spec.good_state)
        overrides[name] = table
    ev = {n: np.broadcast_to(v, (size, v.shape[-1])) for n, v in likelihoods.items()}
    res = net.twin_backend.query(ev, overrides)
    outcome = res.marginals[next_name(cal.outcome)]
    absent = net.variables[cal.outcome].index(cal.outcome_absent)
    sore = 1.0 - outcome[:, absent]
    fixes = [
        Fix(
            target=spec.target,
            good_state=spec.good_state,
            title=spec.title,
            effect=float(sore[0] - sore[i]),
            outcome_before=float(sore[0]),
            outcome_after=float(sore[i]),
            cues=spec.cues,
            drills=spec.drills,
            advice=spec.advice,
            source=spec.source,
        )
        for i, spec in enumerate(specs, start=1)
    ]
    fixes = [f for f in fixes if f.effect > 1e-6]
    fixes.sort(key=lambda f: -f.effect)
    return tuple(fixes)
