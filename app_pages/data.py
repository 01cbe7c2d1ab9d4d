"""Data: the region's roads, the customers and the sites; saved scenarios.

Each uploaded file is validated against the region's roads at once; problems are summarised by
type, the rows with problems can be downloaded, and a plain hint says when a file belongs to
another region or has no coordinates.
"""

from __future__ import annotations

import geopandas as gpd
import streamlit as st

from app_pages import _account as account
from app_pages import _regions
from app_pages import _shared as shared
from planner.engine import workspace as ws
from planner.errors import NetworkError, PlannerError
from planner.outputs import export, maps
from planner.roads.osm_file import check_osm_file
from planner.settings import offline

shared.init_state()


def _set_region(value: str) -> None:
    st.session_state["region"] = value


def _roads_problem(region: str) -> BaseException | None:
    """Why the roads of ``region`` could not be loaded (this session, same online setting
    and area)."""
    failed = st.session_state.get("roads_failed")
    if failed is not None and failed[0] == (region, shared.is_online(), roads_area):
        return failed[1]  # type: ignore[no-any-return]
    return None


def _roads_ready(region: str) -> bool:
    """Whether the roads of ``region`` (trimmed to :data:`roads_area`) are loaded. If not,
    they load in the background (the library's progress, with an ETA, on the job panel; the
    page reruns when they are in). A large road file waits for the customers or a box."""
    job = st.session_state.get("roads_job")
    if job is not None and job.done:
        if job.error is not None:
            st.session_state["roads_failed"] = (st.session_state.get("roads_for"), job.error)
        shared.collect_job("roads")
        st.session_state.pop("roads_error", None)
        job = None
    if shared.graph_loaded(region, roads_area):
        return True
    if _roads_problem(region) is not None:
        return False
    if job is None:
        if _regions.waits_for_area(region, roads_area):
            return False
        st.session_state["roads_for"] = (region, shared.is_online(), roads_area)
        if shared.start_roads(region, roads_area).finished.wait(shared.QUICK_WAIT_S):
            return _roads_ready(region)
    shared.job_panel("roads", stoppable=False)
    return False


def _open_saved(space: str, name: str) -> None:
    try:
        shared.apply_saved(account.my_workspace().open(space, name))
        st.session_state["data_message"] = ("success", f"Opened {name}.")
    except PlannerError as exc:
        st.session_state["data_message"] = ("error", f"Could not open {name}: {exc}")


def _delete_saved(space: str, name: str) -> None:
    try:
        account.my_workspace().delete(space, name)
        st.session_state["data_message"] = ("success", f"Deleted {name} and its files.")
        st.session_state.pop("open_name", None)
    except PlannerError as exc:
        st.session_state["data_message"] = ("error", f"Could not delete {name}: {exc}")


def _open_bundle() -> None:
    bundle = st.session_state.get(shared.UPLOAD_KEYS["scenario"])
    if bundle is None:
        return
    try:
        shared.apply_saved(account.my_workspace().open_bundle(bundle.getvalue(), bundle.name))
        st.session_state["data_message"] = ("success", f"Opened {bundle.name}.")
    except PlannerError as exc:
        st.session_state["data_message"] = ("error", f"Could not open {bundle.name}: {exc}")


st.title("Your data")
if (message := st.session_state.pop("data_message", None)) is not None:
    getattr(st, message[0])(message[1])
st.caption(
    "1 · Data → 2 · Plan → 3 · Results. Everything entered here stays when you switch pages."
)


def upload_section(role: str, *, help_text: str) -> ws.InputFile | None:
    """An upload widget whose file is kept across pages, with its validation summary."""
    label = shared.UPLOAD_LABELS[role]
    widget = st.file_uploader(
        f"Upload {label}",
        type=list(shared.UPLOAD_TYPES),
        key=shared.UPLOAD_KEYS[role],
        help=help_text,
        on_change=shared.remember_upload,
        args=(role,),
    )
    upload = shared.sync_upload(role, widget)
    if upload is None:
        return None
    if widget is None:  # kept from earlier: the widget itself is empty after a page switch
        left, right = st.columns([4, 1])
        left.success(f"Using **{upload.name}** (uploaded earlier).")
        if right.button("Remove", key=f"remove_{role}"):
            shared.forget_upload(role)
            st.rerun()
    region = st.session_state["region"]
    problem = _roads_problem(region)
    if problem is None and not shared.graph_loaded(region, roads_area):
        st.info(f"{upload.name} is checked as soon as the roads of {region_name} are loaded.")
        return upload
    try:
        if problem is not None:
            raise problem
        with st.spinner(f"Checking {upload.name} against the roads of {region_name}…"):
            valid, report = shared.check_upload(
                "customers" if role == "customers" else "sites",
                region,
                upload.name,
                upload.data,
                area=roads_area,
            )
    except NetworkError:
        st.error(
            f"{upload.name} cannot be checked: the roads of {region_name} cannot be loaded "
            "without OpenStreetMap. Choose a bundled region or upload a road file above."
        )
        return upload
    except PlannerError as exc:
        st.error(f"{upload.name} cannot be checked: {exc}")
        return upload
    hint = shared.region_hint(upload, region)
    if role == "customers":
        _regions.elsewhere_hint(upload, region)
    if report.fatal or len(valid) == 0:
        st.error(f"**{upload.name} cannot be used**: {report.summary()}")
    elif report.issues:
        st.warning(
            f"{len(valid):,} rows of **{upload.name}** can be used; "
            f"{len(report.error_rows):,} rows have problems and will be left out "
            "until they are fixed."
        )
    else:
        st.info(f"{len(valid):,} rows of **{upload.name}**, no problems.")
    if hint:
        st.warning(hint)
        if "addresses but no coordinates" in hint and role == "customers":
            if shared.is_online() and st.button("Find coordinates", key=f"geocode_{role}"):
                try:
                    with st.spinner("Looking the addresses up on OpenStreetMap Nominatim…"):
                        st.session_state["uploads"][role] = ws.geocode_upload(upload)
                    st.rerun()
                except PlannerError as exc:
                    st.error(f"Could not look the addresses up: {exc}")
            elif not shared.is_online():
                st.caption("Turn on **Use the internet** above to look addresses up here.")
    if report.issues:
        st.dataframe(
            ws.problem_summary(report), hide_index=True, width="stretch", key=f"problems_{role}"
        )
        st.download_button(
            "Download the rows with problems (CSV)",
            data=export.bad_rows_csv(upload, report),
            file_name=f"problems-{upload.name.rsplit('.', 1)[0]}.csv",
            mime="text/csv",
            key=f"bad_rows_{role}",
            on_click=account.audit_export,
            args=(f"rows with problems of the {role} file",),
        )
    return upload


# -- region --------------------------------------------------------------------------------
st.subheader("Region and roads")
_regions.apply_pending()
left, right = st.columns([2, 3])
with left:
    st.selectbox(
        "Region",
        shared.region_options(),
        key="region",
        format_func=shared.region_title,
        help="A bundled region, a road file you upload, or a place name (online).",
    )
    region_name = shared.region_title(st.session_state["region"])
    #: The area the roads are trimmed to (the user's box, else the customers' extent + margin
    #: for a road file, as ``planner run``); None: the whole region.
    roads_area = shared.current_area()
    st.toggle(
        "Use the internet (place names, address lookup, map tiles)",
        key="online",
        disabled=offline(),
        help="Off: everything runs on this machine."
        + (" This server is set offline (PLANNER_OFFLINE)." if offline() else ""),
    )
with right:
    roads = st.file_uploader(
        "Or upload a road file (.osm, .osm.pbf, .osm.bz2, .graphml)",
        type=list(shared.ROAD_TYPES),
        key=shared.UPLOAD_KEYS["roads"],
        help=f"Up to {shared.MAX_UPLOAD_MB} MB. For a larger area, cut an extract (osmium "
        "extract) or use the command line: planner run --region FILE.",
    )
    if roads is not None:
        road_file = ws.InputFile(roads.name, roads.getvalue())
        try:  # the library's one check of road files, before the file is kept or offered
            check_osm_file(road_file.name, data=road_file.data)
        except PlannerError as exc:
            st.error(f"**{road_file.name} cannot be used**: {exc}")
        else:
            path = shared.save_road_file(road_file)
            if st.session_state["region"] != path:
                st.button("Use these roads", type="primary", on_click=_set_region, args=(path,))
    if shared.is_online():
        place = st.text_input("Or a place (OpenStreetMap name)", key="place")
        if place:
            st.button("Use this place", on_click=_set_region, args=(place,))
    st.caption(
        f"Files up to {shared.MAX_UPLOAD_MB} MB each. Road data © OpenStreetMap contributors."
    )
_regions.region_picker()

preview_box = st.container()  # filled below, once the uploads are known: the map stays in view
with preview_box:
    st.subheader("Preview")
    roads_ready = _roads_ready(st.session_state["region"])

# -- customers -----------------------------------------------------------------------------
st.subheader("Customers")
customers = upload_section(
    "customers",
    help_text="One row per customer: id, lat and lon (or an address), weight (jobs per "
    "year), segment (business/private). CSV, Excel, GeoJSON, GeoPackage or Parquet.",
)
if customers is None:
    st.caption(f"No file: the demo customers of {region_name} are used.")
st.download_button(
    "Customer file template (CSV)",
    data=shared.CUSTOMERS_TEMPLATE.read_bytes(),
    file_name="customers_template.csv",
    mime="text/csv",
)

# -- sites ---------------------------------------------------------------------------------
st.subheader("Sites")
st.caption(
    "Optional. Existing workshops always stay open; new sites are proposed in addition "
    "(switch that off on the Plan page). Partner shops are used by the outsourced layout."
)
tabs = st.tabs(["Existing workshops", "Candidate locations", "Partner repair shops"])
for tab, role in zip(tabs, ("existing", "candidates", "partners"), strict=True):
    with tab:
        upload_section(
            role,
            help_text="One row per site: name, lat and lon (or x/y with a CRS), optional "
            "fixed_cost (EUR/year) and capacity (jobs/year).",
        )

# -- preview -------------------------------------------------------------------------------
with preview_box:
    try:
        region = st.session_state["region"]
        if (problem := _roads_problem(region)) is not None:
            raise problem
        if roads_ready:  # else: the job panel reruns the page once the roads are in
            road_layer = shared.load_roads(region, roads_area)
            if (kept := shared.roads_kept(region, roads_area)) is not None:
                st.info(f"Kept the {kept}.")
            if customers is None:  # the demo table is read only when the map is built
                n_points = shared.demo_customer_count(region)
                source = "demo customers"

                def points() -> gpd.GeoDataFrame:
                    return shared.load_demo_customers(region)
            else:
                valid = shared.check_upload(
                    "customers", region, customers.name, customers.data, area=roads_area
                )[0]
                n_points = len(valid)
                source = f"customers from {customers.name}"

                def points() -> gpd.GeoDataFrame:
                    return valid

            if n_points is not None:
                st.info(
                    f"{n_points:,} {source} in {region_name}. Next: choose the number of "
                    "workshops on the **Plan** page."
                )
                tiles = shared.tiles()
                _regions.box_map(
                    lambda: maps.customers_map(points(), roads=road_layer, tiles=tiles),
                    cache_key=("data", region, roads_area, shared.file_key(customers), tiles),
                    key=f"data-map-{region}-{customers.sha256[:8] if customers else 'demo'}",
                )
            else:
                st.info(f"Upload customers for {region_name}: this region has no demo customers.")
    except NetworkError:
        st.error(
            f"Could not load the roads of **{region_name}**: a place name needs OpenStreetMap, "
            "which cannot be reached"
            + (" (this server is set offline)" if offline() else " (is the internet on?)")
            + ". Choose a bundled region or upload a road file (.osm.pbf) above."
        )
    except PlannerError as exc:
        st.error(f"Could not load the region: {exc}")


# -- scenario ------------------------------------------------------------------------------
st.subheader("Scenario")
st.text_input("Scenario name", key="scenario_name")
save_col, open_col, bundle_col = st.columns(3)
with save_col:
    st.markdown("**Save to the workspace**")
    workspace = account.my_workspace()
    spaces = {space.key: space.label for space in workspace.spaces}
    save_in = "me"
    if len(spaces) > 1:
        save_in = st.selectbox(
            "Save in", list(spaces), format_func=spaces.__getitem__, key="save_space"
        )
    replace = st.checkbox("Replace a saved scenario of this name", key="save_overwrite")
    if st.button("Save scenario", key="save_scenario"):
        try:
            path = workspace.save(
                shared.current_spec(), shared.scenario_inputs(), space=save_in, overwrite=replace
            )
            st.success(f"Saved as {path.parent.name} in {spaces[save_in]}.")
        except FileExistsError as exc:
            st.warning(str(exc))
        except PlannerError as exc:
            st.error(f"Could not save: {exc}")
with open_col:
    st.markdown("**Open a saved scenario**")
    saved = {f"{space}/{name}": (space, name) for space, name in workspace.list_scenarios()}
    chosen = st.selectbox(
        "Saved scenarios",
        list(saved),
        key="open_name",
        index=None,
        format_func=lambda k: k.removeprefix("me/").replace("team:", "Team ", 1),
    )
    if chosen in saved:
        st.button("Open", key="open_scenario", on_click=_open_saved, args=saved[chosen])
        st.button(
            "Delete",
            key="delete_scenario",
            on_click=_delete_saved,
            args=saved[chosen],
            help="Delete this saved scenario and all its files (cannot be undone).",
        )
with bundle_col:
    st.markdown("**One file (.zip)**")
    st.download_button(
        "Download scenario bundle",
        data=shared.scenario_bundle(),
        file_name=f"{ws.scenario_slug(st.session_state['scenario_name'])}.zip",
        mime="application/zip",
        on_click=account.audit_export,
        args=("scenario bundle",),
    )
    bundle = st.file_uploader(
        "Open a bundle (.zip) or scenario (.toml)",
        type=["zip", "toml"],
        key=shared.UPLOAD_KEYS["scenario"],
    )
    if bundle is not None:
        st.button("Open bundle", key="open_bundle", on_click=_open_bundle)

shared.footer()
