"""knowpain — Streamlit entry point: wires the pages together and nothing else.

Run with ``streamlit run app.py`` (or ``knowpain app``). Pages live in ``app_pages/``.
"""

import streamlit as st

st.set_page_config(page_title="knowpain", page_icon=":material/fitness_center:", layout="wide")

pages = [
    st.Page("app_pages/assess.py", title="Assess", icon=":material/quiz:", default=True),
    st.Page("app_pages/how_it_works.py", title="How it works", icon=":material/hub:"),
    # --- THERAPIST PAGES (added with the recalibration issue) ------------------------------
    # Another engineer adds app_pages/calibrate.py and app_pages/cases.py here, e.g.
    #   st.Page("app_pages/calibrate.py", title="Calibrate", icon=":material/tune:"),
    #   st.Page("app_pages/cases.py", title="Cases", icon=":material/folder_shared:"),
    # (a flat list keeps every page one click away in the top bar; if sections are wanted,
    # turn this into {"Lifters and coaches": [...], "Therapists": [...]})
    # ----------------------------------------------------------------------------------------
]

st.navigation(pages, position="top").run()
