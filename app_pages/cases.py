"""Cases (therapists): the clinic's recorded cases, CSV import and export, and a refit of the
numbers from the cases — previewed (what moved, the reference lifters, the behaviour checks,
held-out metrics with a reliability chart) before it is saved as a new version.

Imports, refits and saves go through :class:`model.service.Clinic` (the same policy as the
command line): a file or case imported before is recognised, broken rows are named, and a
refit always starts from the expert calibration with every stored case. This page only draws
widgets; counts come from SQL and the list is read a page at a time, so a store with 200,000
cases reruns as fast as an empty one.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import therapist
from calibration.cases import DEFAULT_MAX_BYTES, allowed_columns, cases_to_csv
from calibration.schema import Calibration
from model.errors import CaseImportError, KnowpainError
from model.network_model import Model
from model.service import views
from model.service.clinic import CaseCounts, Clinic, ImportPlan, RefitBase
from model.service.refit import Refit
from model.service.settings import Settings
from model.text.safe import code_span, plain
from model.text.verbal import describe

ss = st.session_state
UPLOAD_ROUND = "kp_cases_upload_round"  # bumped after an import, to empty the uploader
REFIT = "kp_cases_refit"  # the refit the therapist asked to preview
PAGE = "kp_cases_page"  # the page of the case list on show
PAGE_SIZE = 50
EAGER_EXPORT = 5_000  # up to this many cases the export is built with the page
METHODS = {
    "auto": "Automatic: EM when any value is missing, otherwise Dirichlet counting",
    "em": "EM (expectation–maximisation): uses incomplete cases too",
    "dirichlet": "Dirichlet counting: only cases where a node and its parents are all known",
}
MAX_MB = max(1, DEFAULT_MAX_BYTES // (1024 * 1024))

st.title("Cases")
st.markdown(
    "The cases your clinic has recorded: what the lifter answered, what you concluded after "
    "the assessment, and how the soreness was at the next session. Import and export them as "
    "CSV, and refit the numbers from them — you see what would change before anything is saved."
)
if not therapist.gate():
    st.stop()
therapist.show_flash()
who = therapist.therapist_name()


# ---- list -------------------------------------------------------------------------------------
def case_list(clinic: Clinic, counts: CaseCounts, cal: Calibration) -> None:
    with st.container(key="kp_cases_list"):
        if not counts.total:
            st.info("No cases yet. Import a CSV file, or save cases from the Assess page in "
                    "therapist mode.", icon=":material/folder_open:")
            return
        st.markdown(f"**{counts.total:,} case(s)** · {counts.adjudicated:,} with an "
                    f"adjudicated cause · {counts.with_outcome:,} with a follow-up outcome")
        pages = max(1, -(-counts.total // PAGE_SIZE))
        if pages > 1:
            number = int(st.number_input(f"Page (of {pages:,}, {PAGE_SIZE} cases each)",
                                         min_value=1, max_value=pages, value=1, step=1,
                                         key=PAGE))
        else:
            number = 1
        shown = clinic.case_page(PAGE_SIZE, (number - 1) * PAGE_SIZE)
        st.dataframe(views.case_table(shown, cal), hide_index=True, width="stretch",
                     height=360)
        imports = clinic.imports()
        if imports:
            with st.expander(f"Imports ({len(imports):,})"):
                st.dataframe(pd.DataFrame([
                    {"import": r.id, "file": r.file_name, "by": r.who,
                     "when (UTC)": f"{r.at:%Y-%m-%d %H:%M}", "rows": r.rows,
                     "stored": r.imported, "already stored": r.skipped_known,
                     "broken, skipped": r.skipped_broken} for r in reversed(imports)]),
                    hide_index=True, width="stretch")


# ---- import and export --------------------------------------------------------------------------
def _export_all(conf: Settings) -> str:
    """Every case as CSV (read when asked for: a large store is not read on every rerun)."""
    with Clinic.open(conf) as clinic:
        cal = clinic.calibration()
        return cases_to_csv(clinic.cases(), variables=cal.variables, causes=cal.causes,
                            outcome_node=cal.outcome)


def import_export(clinic: Clinic, counts: CaseCounts, cal: Calibration) -> None:
    vocab = {"variables": cal.variables, "causes": cal.causes, "outcome_node": cal.outcome}
    st.markdown("##### Import cases from a CSV file")
    with st.expander("What the file must look like"):
        st.markdown(
            "UTF-8 text with a header row and one row per case; every column is optional. "
            "Evidence columns are named after the nodes and hold a state name; "
            "`cause:<cause>` columns hold your adjudicated judgement; `outcome` is the "
            "soreness at the next session; `therapist` and `case_id` are optional. Empty "
            "cells mean unknown. Identical rows are separate cases (two lifters can give the "
            "same answers). A file you imported before, and rows whose `case_id` is already "
            "stored, are recognised and not imported twice. The whole file is checked first: "
            "broken rows are named, and then nothing is imported unless you ask to import "
            f"the valid rows. At most {MAX_MB} MB."
        )
        st.caption("Allowed columns: " + ", ".join(f"`{c}`" for c in allowed_columns(
            cal.variables, cal.causes, outcome_node=cal.outcome)))
        st.download_button("Download an empty template", cases_to_csv([], **vocab),
                           file_name="knowpain-cases-template.csv", mime="text/csv",
                           on_click="ignore", icon=":material/download:")
    round_ = ss.get(UPLOAD_ROUND, 0)
    upload = st.file_uploader(f"Cases CSV file (at most {MAX_MB} MB)", type=["csv"],
                              key=f"kp_cases_upload_{round_}", max_upload_size=MAX_MB)
    if upload is not None:
        with st.container(key="kp_cases_import"):
            data = upload.getvalue()
            try:
                plan = clinic.plan_import(clinic.check_case_file(data, DEFAULT_MAX_BYTES),
                                          upload.name)
            except CaseImportError as exc:
                st.error(f"**{plain(upload.name)} was not imported: {exc.total} problem(s).** "
                         "Nothing was stored. Fix them and upload the file again.",
                         icon=":material/error:")
                more = exc.total - len(exc.shown)
                st.markdown("\n".join([f"- {plain(p)}" for p in exc.shown]
                                      + [f"- … and {more} more"] * (more > 0)))
            else:
                confirm_import(clinic, data, plan, round_)
    st.markdown("##### Export")
    label = f"Download all {counts.total:,} case(s) as CSV"
    if counts.total <= EAGER_EXPORT:
        st.download_button(label, cases_to_csv(clinic.cases(), **vocab),
                           file_name="knowpain-cases.csv", mime="text/csv", on_click="ignore",
                           icon=":material/download:", key="kp_cases_export")
    else:  # built when clicked: a large store is not read on every rerun
        conf = clinic.settings
        st.download_button(label, lambda: _export_all(conf), file_name="knowpain-cases.csv",
                           mime="text/csv", on_click="ignore", icon=":material/download:",
                           key="kp_cases_export")


def confirm_import(clinic: Clinic, data: bytes, plan: ImportPlan, round_: int) -> None:
    name = plain(plan.file_name)
    if plan.previous:
        st.info(plain(" ".join(plan.describe())), icon=":material/content_copy:")
        return
    broken = plan.broken
    new = len(plan.new)
    if broken:
        st.error(f"**{name}: {len(broken):,} broken row(s)** — nothing is imported unless you "
                 f"ask for the {new:,} valid row(s) below.", icon=":material/error:")
        shown = plan.problems[:CaseImportError.limit]
        more = plan.problem_total - len(shown)
        st.markdown("\n".join(f"- {plain(p)}" for p in shown)
                    + (f"\n- … and {more:,} more" if more > 0 else ""))
    elif new:
        st.success(f"{name}: {new:,} case(s), all valid.", icon=":material/check_circle:")
    for line in plan.describe()[1:]:
        st.caption(plain(line))
    if not new:
        st.warning(f"{name} holds no new cases.", icon=":material/info:")
        return
    skip = False
    if broken:
        skip = st.checkbox(f"Import the valid rows ({new:,}) and skip the {len(broken):,} "
                           "broken one(s)", value=False, key="kp_cases_skip_broken")
    if not who:
        st.caption("Enter your name at the top to import them (cases without a therapist "
                   "column are recorded under your name).")
    if st.button(f"Import {new:,} case(s)", type="primary",
                 disabled=not who or (bool(broken) and not skip),
                 key="kp_cases_import_button", icon=":material/upload:"):
        try:
            report = clinic.import_cases(data, who, file_name=plan.file_name, skip_broken=skip,
                                         max_bytes=DEFAULT_MAX_BYTES)
        except KnowpainError as exc:
            therapist.store_error(exc)
            return
        ss[UPLOAD_ROUND] = round_ + 1
        ss.pop("kp_cases_skip_broken", None)
        therapist.flash("success", plain(" ".join(report.describe())))
        st.rerun()


# ---- refit --------------------------------------------------------------------------------------
@st.cache_data(max_entries=8, show_spinner="Refitting and cross-validating…")
def preview(base_hash: str, revision: str, method: str, folds: int, _clinic: Clinic,
            _base: RefitBase) -> Refit:
    """The refit of the expert base from every stored case (cached by the base's content
    and the store's case revision: the cases are read only on a cache miss)."""
    return _clinic.refit(method, folds=folds, base=_base)


def reliability_chart(comparison, cal: Calibration) -> None:
    points = views.reliability_table(comparison)
    if points.empty:
        return
    causes = list(dict.fromkeys(points["cause"]))
    cause = st.selectbox("Reliability plot for", causes, key="kp_cases_rel_cause",
                         format_func=lambda c: cal.nodes[c].title)
    data = points[points["cause"] == cause].to_dict("records")
    spec = {
        "layer": [
            {"data": {"values": [{"predicted": 0, "observed": 0},
                                 {"predicted": 1, "observed": 1}]},
             "mark": {"type": "line", "strokeDash": [4, 4], "color": "gray"},
             "encoding": {"x": {"field": "predicted", "type": "quantitative"},
                          "y": {"field": "observed", "type": "quantitative"}}},
            {"data": {"values": data},
             "mark": {"type": "line", "point": {"filled": True, "size": 70}},
             "encoding": {
                 "x": {"field": "predicted", "type": "quantitative",
                       "title": "predicted chance", "scale": {"domain": [0, 1]},
                       "axis": {"format": ".0%"}},
                 "y": {"field": "observed", "type": "quantitative",
                       "title": "observed share", "scale": {"domain": [0, 1]},
                       "axis": {"format": ".0%"}},
                 "color": {"field": "version", "type": "nominal", "title": None},
                 "strokeDash": {"field": "version", "type": "nominal", "title": None},
                 "shape": {"field": "version", "type": "nominal", "title": None},
                 "tooltip": [{"field": "version"}, {"field": "count", "title": "cases"},
                             {"field": "predicted", "format": ".0%"},
                             {"field": "observed", "format": ".0%"}]}},
        ],
        "height": 260,
    }
    st.vega_lite_chart(spec, key="kp_cases_reliability",
                       alt=f"Reliability plot for {cal.nodes[cause].title}: predicted chance "
                           "against the observed share, before and after the refit; the "
                           "dashed diagonal is perfect calibration.")
    st.caption("Points on the dashed diagonal are perfectly calibrated; below it the model "
               "predicts too high, above it too low. Few cases per bin make points jumpy.")


def metrics_panel(result: Refit, cal: Calibration) -> None:
    with st.container(key="kp_cases_metrics"):
        st.markdown("##### Held-out performance: before vs after")
        if result.comparison is None:
            st.info(f"No held-out comparison: {plain(result.cv_problem)}.", icon=":material/info:")
            return
        comp = result.comparison
        st.caption(f"{comp.n_splits}-fold cross-validation on {comp.n_cases} cases: each fold "
                   "is refitted without its cases and then predicts their adjudicated causes "
                   "from the other answers.")
        table = views.metrics_table(comp)
        table["cause"] = table["cause"].map(lambda c: cal.nodes[c].title)
        table["better"] = table["better"].replace({"": "same / undefined"})
        for column in ("before", "after"):
            table[column] = table[column].map(lambda x: "—" if x != x else f"{x:.3f}")
        st.table(table, hide_index=True, border="horizontal")
        reliability_chart(comp, cal)


def refit_tab(clinic: Clinic, counts: CaseCounts, base_model: Model) -> None:
    if not counts.total:
        st.info("Refitting needs cases: import some first.", icon=":material/info:")
        return
    try:
        base = clinic.refit_base()
    except KnowpainError as exc:
        st.error(f"The refit base could not be read: {exc}", icon=":material/error:")
        return
    st.markdown(f"Starts from {base.why} and uses all {counts.total:,} stored case(s): each "
                "number moves towards the cases as far as its confidence allows, and the "
                "behaviour-check orderings hold unless the cases clearly contradict them.")
    method = st.radio("Method", list(METHODS), key="kp_cases_method",
                      format_func=METHODS.__getitem__)
    folds = int(st.number_input("Folds for the held-out comparison (k)", min_value=2,
                                max_value=10, value=5, step=1, key="kp_cases_folds"))
    assert base.version is not None
    request = (base.version.content_hash, f"{clinic.path}|{clinic.cases_revision()}", method,
               folds)
    if st.button("Preview the refit", type="primary", key="kp_cases_refit_button",
                 icon=":material/model_training:"):
        ss[REFIT] = request
    if ss.get(REFIT) != request:
        if REFIT in ss:
            st.caption("The settings or the cases changed: preview the refit again.")
        return
    try:
        result = preview(*request, _clinic=clinic, _base=base)
    except KnowpainError as exc:
        st.error(f"The refit could not run: {plain(str(exc))}", icon=":material/error:")
        return
    show_refit(clinic, result, therapist.version_model(base.version)
               if base.version.id != clinic.active().id else base_model)


def behaviour_panel(result: Refit) -> None:
    """Orderings kept by holding back, and checks the cases contradict (with the cases)."""
    with st.container(key="kp_cases_behaviour"):
        if result.held_back is not None:
            st.info(f"**Kept the experts' orderings:** {result.held_back}.",
                    icon=":material/balance:")
        if result.failures:
            st.error("**The cases contradict these behaviour checks** (saving is refused):\n"
                     + "\n".join(f"- {line}" for line in result.failure_lines()),
                     icon=":material/rule:")


def show_refit(clinic: Clinic, result: Refit, base_model: Model) -> None:
    base = base_model.calibration
    with st.container(key="kp_cases_fit"):
        if result.method == "em":
            state = (f"converged after {result.iterations} iterations" if result.converged
                     else f"did **not** converge within {result.iterations} iterations: treat "
                          "the result with care")
            st.markdown(f"**EM** on {result.n_cases} cases: {state}.")
            if len(result.history) > 1:
                history = [{"step": i, "log-likelihood": v} for i, v in enumerate(result.history)]
                st.vega_lite_chart(
                    {"data": {"values": history}, "height": 160,
                     "mark": {"type": "line", "point": True},
                     "encoding": {
                         "x": {"field": "step", "type": "quantitative", "title": "EM step",
                               "axis": {"tickMinStep": 1}},
                         "y": {"field": "log-likelihood", "type": "quantitative",
                               "title": "log-likelihood", "scale": {"zero": False}}}},
                    key="kp_cases_history",
                    alt="Log-likelihood of the cases after each accepted EM step.")
                st.caption(f"Log-likelihood of the cases: {result.history[0]:.1f} → "
                           f"{result.history[-1]:.1f}. It levels off as EM converges.")
        else:
            st.markdown(f"**Dirichlet counting** on {result.n_cases} cases (closed form, one "
                        "step; for each node, cases missing it or a parent are skipped).")
    with st.container(key="kp_cases_moved"):
        st.markdown("##### The numbers that moved most")
        rows = [{"number": plain(therapist.parameter_label(base, m.node, m.column, m.state)),
                 "before": describe(m.before), "after": describe(m.after),
                 "change": therapist.points(m.delta)} for m in result.moved[:10]]
        if rows:
            st.table(pd.DataFrame(rows), hide_index=True, border="horizontal")
        else:
            st.caption("No number moved.")
    verdict = clinic.review(result.calibration, source="the refit")
    if verdict.calibration is None:
        st.error("**The refit is not a valid calibration:**\n"
                 + "\n".join(f"- {plain(p)}" for p in verdict.problems), icon=":material/error:")
        return
    after = therapist.calibration_model(verdict.text, verdict.calibration)
    checks_ok = therapist.checks_panel(verdict, "kp_cases_checks")
    if verdict.check_reasons:
        st.markdown("\n".join(f"- {r}" for r in verdict.check_reasons))
    behaviour_panel(result)
    therapist.preview_panel(base_model, after, "kp_cases_preview")
    metrics_panel(result, base)
    with st.container(border=True, key="kp_cases_save"):
        st.markdown("##### Save the refit as a new version")
        note = st.text_input("Note", key="kp_cases_note", max_chars=300,
                             value=f"refit from {result.n_cases} cases ({result.method})")
        activate = therapist.activate_choice("kp_cases_activate")
        blockers = [b for b, bad in (("the save policy refuses it (see above)", not checks_ok),
                                     ("enter your name at the top", not who)) if bad]
        if blockers:
            st.caption("Not ready to save: " + "; ".join(blockers) + ".")
        if st.button("Save refit as a new version", disabled=bool(blockers),
                     key="kp_cases_save_button", icon=":material/save:"):
            try:
                v = clinic.save_refit(result, who, note, activate=activate)
            except KnowpainError as exc:
                therapist.store_error(exc)
                return
            ss.pop(REFIT, None)
            state = "and made it active" if activate else "(not active yet)"
            therapist.flash("success", f"Saved the refit as version {v.id} {state} (a refit "
                            f"of version {v.fitted_from}).")
            st.rerun()


# ---- the page ---------------------------------------------------------------------------------
with therapist.open_clinic() as clinic:
    if clinic is None:
        st.stop()
    active, base_model = therapist.active_model(clinic)
    try:
        counts = clinic.case_counts()
    except KnowpainError as exc:
        therapist.store_error(exc)
        st.stop()
    cal = base_model.calibration
    st.caption(f"Store: {code_span(clinic.path)} · active version {active.id}"
               + (" (a refit)" if active.is_refit else ""))
    # fixed labels (the count is in the list): a label is part of the tabs' identity
    tab_list, tab_io, tab_refit = therapist.state_tabs(
        ["Cases", "Import and export", "Refit from cases"], "kp_cases_tab")
    with tab_list:
        case_list(clinic, counts, cal)
    with tab_io:
        import_export(clinic, counts, cal)
    with tab_refit:
        refit_tab(clinic, counts, base_model)
