"""knowpain — ``streamlit run app.py`` from a checkout; the pages live in ``app_pages/``."""

from app_pages.navigation import run

run()
