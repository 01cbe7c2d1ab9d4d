"""Service Site Planner: the Streamlit app (``streamlit run app.py``).

This file only sets the page up and routes; the pages in ``app_pages/`` read widgets, call the
``planner`` library and render. Leaflet and its plugins are copied from pip-installed XStatic
packages into ``static/vendor/`` (served at ``/app/static/vendor/``) so that maps render with
no internet.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from planner.outputs import _assets

APP_DIR = Path(__file__).resolve().parent
PAGES_DIR = APP_DIR / "app_pages"

st.set_page_config(page_title="Service Site Planner", page_icon="🛠️", layout="wide")


@st.cache_resource(show_spinner=False)
def _install_assets() -> str | None:
    try:
        _assets.install_static_assets(APP_DIR / "static")
    except OSError as exc:  # e.g. a read-only install
        return f"Could not copy the map libraries into {APP_DIR / 'static'}: {exc}"
    return None


if (problem := _install_assets()) is not None:
    st.warning(f"{problem}. Maps may stay empty without internet.")

pages = [
    st.Page(
        PAGES_DIR / "plan.py", title="Plan workshops", icon=":material/location_on:", default=True
    )
]
if (PAGES_DIR / "compare.py").is_file():
    pages.append(
        st.Page(
            PAGES_DIR / "compare.py", title="Compare scenarios", icon=":material/compare_arrows:"
        )
    )
st.navigation(pages).run()
