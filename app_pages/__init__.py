"""The Streamlit app: one thin module per page, plus the pieces they share.

Pages draw widgets and call :mod:`model` (and its service layer); they never open the
store themselves and hold no model logic.
"""
