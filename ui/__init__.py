"""Shared pieces of the dashboard's pages (Streamlit): pages/ holds only the page scripts, one per page."""
