"""How it works: the network, where each number comes from, and what the model cannot do."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from calibration.schema import NodeSpec
from model.results import Diagnosis
from model.text.safe import plain, plain_join
from model.text.verbal import ANCHORS, describe

ROLE_TITLES = {
    "context": "Training",
    "technique": "Technique",
    "latent": "Worked out by the model",
    "cause": "Explanations (causes)",
    "symptom": "Symptoms",
}
PARAM_WORDS = {
    "table": "one set of chances for every combination of the things it depends on",
    "noisy_or": "each thing it depends on gets its own chance of causing it, they combine, "
    "and a small allowance covers causes that are not on the map",
    "noisy_max": "the same, for something with levels (none, mild, marked): each cause can "
    "only push it up",
}
ROWS = (("context",), ("technique", "latent"), ("cause",), ("symptom",))
LOW, HIGH = (255, 255, 255), (31, 78, 121)

loaded = common.current_model()
cal = loaded.calibration
common.init_session(cal)
evidence = common.active_evidence(cal, common.answers())
flags = common.ticked_flags()
diagnosis = common.diagnose(loaded, evidence, flags, common.none_apply())
hide_numbers = diagnosis.triage.withhold_estimates


def shade(p: float) -> tuple[str, str]:
    """Fill and font colour for a probability (darker = more probable)."""
    rgb = [round(lo + (hi - lo) * p) for lo, hi in zip(LOW, HIGH, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("white" if p > 0.55 else "black")


def _quote(*lines: str) -> str:
    """A DOT string literal; several lines are joined with centred line breaks."""
    escaped = (t.replace("\\", "\\\\").replace('"', '\\"') for t in lines)
    return '"' + "\\n".join(escaped) + '"'


def node_state(spec: NodeSpec, d: Diagnosis) -> tuple[tuple[str, ...], float | None]:
    """What a box says (lines after the title) and the probability that shades it.

    Answered nodes say what was answered and are not shaded; with a red flag nothing is.
    """
    if spec.name in d.evidence:
        return ("answered: " + spec.state_label(d.evidence[spec.name]),), None
    if hide_numbers:
        return (), None
    dist = d.posterior[spec.name]
    if "yes" in dist:
        return (describe(dist["yes"]),), dist["yes"]
    state = max(dist, key=dist.__getitem__)
    return (f"(most likely: {spec.state_label(state)})", describe(dist[state])), dist[state]


def node_line(spec: NodeSpec, d: Diagnosis) -> str:
    lines, p = node_state(spec, d)
    label = _quote(spec.title, *lines)
    if spec.name in d.evidence:
        return (f'{spec.name} [label={label}, fillcolor="#eeeeee", fontcolor="black", '
                'penwidth=2.5, style="rounded,filled,bold"]')
    if p is None:
        return f'{spec.name} [label={label}, fillcolor="white", fontcolor="black"]'
    fill, font = shade(p)
    return f"{spec.name} [label={label}, fillcolor={_quote(fill)}, fontcolor={_quote(font)}]"


def as_list(d: Diagnosis) -> str:
    """The map in words, for small screens and screen readers."""
    out = []
    for role, title in ROLE_TITLES.items():
        specs = [s for s in cal.nodes.values() if s.role == role]
        if not specs:
            continue
        out.append(f"**{title}**\n")
        for spec in specs:
            lines, _ = node_state(spec, d)
            now = f": {' '.join(lines)}" if lines else ""
            parents = ", ".join(cal.nodes[p].title for p in spec.parents)
            after = f" ← depends on {parents}" if parents else ""
            out.append(f"- {plain(spec.title)}{plain(now)}{plain(after)}")
        out.append("")
    return common.nb("\n".join(out))


def dot(d: Diagnosis) -> str:
    lines = [
        "digraph knowpain {",
        "  rankdir=TB; nodesep=0.15; ranksep=0.6; newrank=true;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=13,'
        ' margin="0.12,0.06"];',
        '  edge [color="#555555", arrowsize=0.7];',
    ]
    for role, title in ROLE_TITLES.items():
        specs = [s for s in cal.nodes.values() if s.role == role]
        if not specs:
            continue
        lines.append(f"  subgraph cluster_{role} {{")
        lines.append(f'    label={_quote(title)}; fontname="Helvetica"; fontsize=12; '
                     'style="rounded,dashed"; color="#888888";')
        lines += [f"    {node_line(s, d)};" for s in specs]
        lines.append("  }")
    for row in ROWS:  # one row per group of roles, top to bottom
        names = [n for n, spec in cal.nodes.items() if spec.role in row]
        if names:
            lines.append(f"  {{ rank=same; {'; '.join(names)}; }}")
    for spec in cal.nodes.values():
        lines += [f"  {p} -> {spec.name};" for p in spec.parents]
    lines.append("}")
    return "\n".join(lines)


def describe_node(spec: NodeSpec) -> None:
    with st.expander(plain(spec.title)):
        if spec.observable and spec.question:
            st.markdown(f"**Question:** {plain(spec.question)}")
        elif spec.question:
            st.markdown("**Not asked:** "
                        + plain(spec.question.removeprefix("Not observed directly: ")))
        st.markdown("**Answers:** " + plain_join(spec.state_label(s) for s in spec.states))
        if spec.parents:
            st.markdown("**Depends on:** " + plain_join(cal.nodes[p].title for p in spec.parents))
        if spec.summary:
            st.markdown(f"**In short:** {plain(spec.summary)}")
        worth = cal.column_confidences(spec.name)
        if spec.column_confidence and worth.min() != worth.max():
            origin = ("Therapists set them and recorded cases refined them; each counts as "
                      f"between {worth.min():,.0f} and {worth.max():,.0f} cases' worth")
        else:
            origin = (f"Therapists set them; they count as about {worth.max():,.4g} cases' "
                      "worth")
        st.markdown(
            f"**Numbers:** {PARAM_WORDS.get(spec.cpt, spec.cpt)}. {origin} of evidence, which "
            "sets how wide the intervals are and how fast real cases can change them. "
            "Therapists see the full reasoning on the Calibrate page."
        )
        if spec.source:
            st.caption(f"Sources: {plain(spec.source)}")


st.title("How it works")
common.disclaimer(cal)
st.markdown(
    "knowpain is a Bayesian network: a map of what influences what, with a number on every "
    "arrow set by therapists. Your answers on **Assess** are fixed on the map and the "
    "network works out how likely each explanation is, how much each answer mattered, "
    "which question would tell the most, and which change would help most at the next "
    "session."
)

st.subheader("The network")
if hide_numbers:
    st.caption("No estimates are shown on the map: a warning sign is ticked on Assess, or "
               "the warning signs are not all answered yet.")
else:
    st.caption(
        "Each box shows its current estimate in words and numbers, given your answers on "
        "Assess; darker boxes are more probable. Answered questions have a bold border and "
        "say what you answered."
    )
st.graphviz_chart(dot(diagnosis), width="stretch")
with st.expander("The same map as a list (easier on a phone)"):
    st.markdown(as_list(diagnosis))

st.subheader("Where each number comes from")
for role, title in ROLE_TITLES.items():
    specs = [s for s in cal.nodes.values() if s.role == role]
    if not specs:
        continue
    st.markdown(f"#### {title}")
    for spec in specs:
        describe_node(spec)

st.subheader("Reading the words")
st.markdown(
    "Every number comes with a word from a verbal–numerical scale used to elicit expert "
    "probabilities (Renooij & Witteman; van der Gaag and colleagues). The word is the "
    "nearest anchor on the 0–100 line, except that the words at the two ends are kept for "
    "what shows as under 1 % or over 99 %:"
)
st.markdown(
    "| Word | Where it sits |\n|---|---|\n"
    + "\n".join(f"| {a.word} | {a.percent} % |" for a in ANCHORS)
)
st.markdown(
    "The **90 % interval** next to an estimate shows how far it could move if the "
    "therapists' numbers were off by as much as their stated confidence allows."
)

st.subheader("What the model cannot do")
st.markdown(
    """
- **There is no gold standard.** Whether the back muscles were overloaded or did the
  lifting cannot be measured directly, and there is no large set of lifters with a
  confirmed cause. The numbers are therapists' judgement anchored on studies; the
  intervals show how uncertain they are. Recorded cases can refine them over time.
- **Some links are contested and deliberately kept weak.** A rounded low back is only
  loosely linked to "something else": a systematic review found low-quality evidence that
  bending the lower back while lifting is *not* a risk factor for back pain. Likewise,
  rules such as an acute-to-chronic workload "danger zone" predict injury barely better
  than chance, so a jump in load counts as one contributor among several, not as a
  threshold that decides the answer.
- **Simplifications.** The symptom questions are treated as independent once the causes
  are known, although in a real person they are linked. Where several things can each
  bring on the same problem, each gets its own separate chance, so when there is no
  soreness at all the explanations do not compete.
- **It describes people who ask this question,** not all lifters, and only three broad
  explanations; "something else" is the honest catch-all and never drops near zero when
  your back is sore.
- **Warning signs are not weighed by the network.** Serious causes of back pain are rare,
  so a network would give them tiny, falsely reassuring numbers. They are checked by fixed
  rules first; a red warning sign hides every estimate.
- **The "what if" numbers are model predictions** for your next session, not results of a
  trial. The forecast knows that sessions change: a one-off max or jump in load is rarely
  repeated, your training history moves on, and the same work makes you less sore the second
  time; technique habits carry over until you change them. How much each of these carries
  over is therapists' judgement, and the 90 % interval shows how uncertain the forecast is.
"""
)
