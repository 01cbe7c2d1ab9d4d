"""Pages of the Streamlit app (routed by ``app.py``) and their shared, cached helpers."""
