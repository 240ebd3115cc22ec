"""Entry script of the installed app: ``knowpain app`` runs ``streamlit run`` on this file."""

from app_pages.navigation import run

run()
