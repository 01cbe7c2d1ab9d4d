"""Service Site Planner: the Streamlit app (``streamlit run app.py``).

This file only sets the page up and routes; the pages in ``app_pages/`` read widgets, call the
``planner`` library and render. The workflow runs left to right: **Data** (region, customers,
sites), **Plan** (layout, number of workshops, run), **Results**, **Compare**, **Costs** and
**Export**; every value entered stays when switching pages (see ``app_pages/_shared.py``).

Leaflet and its plugins are copied from pip-installed XStatic packages into ``static/vendor/``
(served at ``/app/static/vendor/``) so that maps render with no internet.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages import _account as account
from app_pages import _shared as shared
from planner.outputs import assets

APP_DIR = Path(__file__).resolve().parent
PAGES_DIR = APP_DIR / "app_pages"

st.set_page_config(page_title="Service Site Planner", page_icon="🛠️", layout="wide")


@st.cache_resource(show_spinner=False)
def _install_assets() -> str | None:
    try:
        assets.install_static_assets(APP_DIR / "static")
    except OSError as exc:  # e.g. a read-only install
        return f"Could not copy the map libraries into {APP_DIR / 'static'}: {exc}"
    return None


if (problem := _install_assets()) is not None:
    st.warning(f"{problem}. Maps may stay empty without internet.")

account.require_user()  # a sign-in page (and nothing else) until the user has signed in
account.user_box()
shared.init_state()

#: (file, title, icon) in workflow order; pages added by other work appear when present.
PAGES = (
    ("data.py", "Data", ":material/upload_file:"),
    ("register.py", "Customer register", ":material/groups:"),
    ("plan.py", "Plan", ":material/tune:"),
    ("results.py", "Results", ":material/location_on:"),
    ("compare.py", "Compare", ":material/compare_arrows:"),
    ("costs.py", "Costs", ":material/euro:"),
    ("export.py", "Export", ":material/download:"),
)
pages = [
    st.Page(PAGES_DIR / name, title=title, icon=icon, default=name == "data.py")
    for name, title, icon in PAGES
    if (PAGES_DIR / name).is_file()
]
st.navigation(pages).run()
