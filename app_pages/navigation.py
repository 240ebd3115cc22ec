"""The app's pages and navigation, shared by ``app.py`` (``streamlit run app.py``) and
``app_pages/main.py`` (what ``knowpain app`` runs from an installed package)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent


def run() -> None:
    """Configure the page and run the page the visitor chose."""
    st.set_page_config(page_title="knowpain", page_icon=":material/fitness_center:",
                       layout="wide")
    pages = [
        st.Page(HERE / "assess.py", title="Assess", icon=":material/quiz:", default=True),
        st.Page(HERE / "how_it_works.py", title="How it works", icon=":material/hub:"),
        # therapists: passcode-gated, they write calibration versions and cases to the store
        st.Page(HERE / "calibrate.py", title="Calibrate", icon=":material/tune:"),
        st.Page(HERE / "cases.py", title="Cases", icon=":material/folder_shared:"),
    ]
    st.navigation(pages, position="top").run()
