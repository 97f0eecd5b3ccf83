"""The Streamlit app: `opscore app` (or `streamlit run app/main.py`)."""
