"""knowpain — Streamlit entry point: wires the pages together and nothing else.

Run with ``streamlit run app.py`` (or ``knowpain app``). Pages live in ``app_pages/``.
"""

import streamlit as st

st.set_page_config(page_title="knowpain", page_icon=":material/fitness_center:", layout="wide")

pages = [
    st.Page("app_pages/assess.py", title="Assess", icon=":material/quiz:", default=True),
    st.Page("app_pages/how_it_works.py", title="How it works", icon=":material/hub:"),
    # therapists: passcode-gated, they write calibration versions and cases to the store
    st.Page("app_pages/calibrate.py", title="Calibrate", icon=":material/tune:"),
    st.Page("app_pages/cases.py", title="Cases", icon=":material/folder_shared:"),
]

st.navigation(pages, position="top").run()
