"""A calibration whose every piece of therapist-written text is hostile Markdown, and a
crafted link: shared by the report tests, the AppTests and the browser test."""

from __future__ import annotations

from dataclasses import replace

from calibration.schema import Calibration, Messages

#: Would render a phishing link, an outside image, raw HTML, a colour directive and emphasis.
EVIL = ("[Claim your prize](https://evil.example/login) ![t](http://127.0.0.1:9/track.png) "
        "<img src=http://127.0.0.1:9/x.png> <b>bold</b> :red[alarm] **loud** www.evil.example")

#: A shared link with unknown keys and values that carry the same payload.
EVIL_LINK = {
    "training_age": "[x](https://evil.example)",
    "<img src=http://127.0.0.1:9/k.png>": "1",
    "flags": "![p](http://127.0.0.1:9/f.png),bogus",
    "max_attempt": "yes",
}


def hostile_calibration(cal: Calibration) -> Calibration:
    """``cal`` with EVIL in every label, question, help, state label, rationale, source, note,
    red-flag question and message, fix text and message."""
    nodes = {
        name: replace(
            node,
            label=f"{node.title} {EVIL}",
            question=f"{node.question} {EVIL}",
            help=EVIL,
            state_labels={s: f"{node.state_label(s)} {EVIL}" for s in node.states},
            rationale=EVIL,
            source=EVIL,
            notes={"leak": EVIL},
        )
        for name, node in cal.nodes.items()
    }
    flags = tuple(replace(f, question=f"{f.question} {EVIL}", help=EVIL, message=EVIL,
                          source=EVIL) for f in cal.red_flags)
    rules = tuple(replace(r, reason=f"{r.reason} {EVIL}") for r in cal.evidence_rules)
    fixes = {t: replace(f, title=f"{f.title} {EVIL}", cues=(EVIL, EVIL), drills=(EVIL,),
                        advice=EVIL, source=EVIL) for t, f in cal.fixes.items()}
    scenarios = tuple(replace(s, label=f"{s.label} {EVIL}") for s in cal.scenarios)
    return replace(cal, nodes=nodes, red_flags=flags, evidence_rules=rules, fixes=fixes,
                   scenarios=scenarios, messages=Messages(red=EVIL, amber=EVIL, disclaimer=EVIL))
