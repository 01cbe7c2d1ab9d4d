"""The Data page's map and file hints are built once per (region, area, file) for the whole
server: a rerun of the page (a page switch, another widget) or another user with the same file
sends the kept map instead of building and rendering it again (issue 24).

Driven headlessly with ``streamlit.testing.v1.AppTest``; nothing here touches the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import folium
import pytest
import streamlit_folium
from _apptest import TIMEOUT_S
from _apptest import ok as _ok
from _apptest import wait_for_job as _wait_for_job
from streamlit.testing.v1 import AppTest

from planner.engine import workspace as ws
from planner.outputs import maps
from planner.roads import network

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"

pytestmark = pytest.mark.usefixtures("offline_app")


def _customers_csv(n: int, seed: int) -> bytes:
    from planner.inputs import customers as demand

    demo = demand.load_demo_customers("liechtenstein")
    rows = demo[["customer_id", "lat", "lon", "weight", "segment"]]
    rows = rows.rename(columns={"customer_id": "id"}).sample(n=n, random_state=seed)
    return rows.to_csv(index=False).encode()


def _data_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = "liechtenstein"
    _ok(at.run())
    _ok(at.switch_page("app_pages/data.py").run())
    return _wait_for_job(at, "roads")


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_map_payload_is_what_st_folium_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    import branca.element

    from app_pages import _shared

    def same_map() -> folium.Map:  # two maps alike, element ids too (branca draws them)
        ids = iter(range(10_000))
        monkeypatch.setattr(branca.element, "urandom", lambda n: next(ids).to_bytes(n, "big"))
        customers = maps.pd.DataFrame({"lat": [47.1, 47.2], "lon": [9.5, 9.55], "weight": [1, 2]})
        m = maps.customers_map(customers)
        folium.plugins.Draw().add_to(m)
        return m

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(streamlit_folium, "_component_func", lambda **kw: sent.append(kw))
    returned = ["last_active_drawing"]
    streamlit_folium.st_folium(
        same_map(), key="k", use_container_width=True, returned_objects=returned
    )
    payload = _shared.map_payload(same_map(), key="k", returned_objects=returned)
    assert payload == {k: sent[0][k] for k in payload}


def test_data_page_reruns_do_not_rebuild_the_map(monkeypatch: pytest.MonkeyPatch) -> None:
    from app_pages import _shared

    _shared.memo("map_payloads", _shared.MAP_CACHE_SIZE).clear()
    builds = _counting(monkeypatch, maps, "customers_map")
    hints = _counting(monkeypatch, ws, "region_hint")
    hashes = _counting(monkeypatch, network, "_hash_graph")
    data = _customers_csv(150, seed=24)

    at = _data_page()
    assert len(builds) == 1
    assert not hints
    at.file_uploader(key="customers_file").upload("mine.csv", data, "text/csv")
    _ok(at.run())
    assert any("150 customers from mine.csv" in i.value for i in at.info), [
        i.value for i in at.info
    ]
    maps_shown = list(at.get("component_instance"))
    assert maps_shown, "the Data page shows its map"
    assert len(builds) == 2
    assert len(hints) == 1

    graph_hashes = len(hashes)  # the shared graph is hashed once, checks reuse its hash

    for _ in range(3):  # reruns where nothing changed: the kept map and hint are sent
        _ok(at.run())
    assert len(builds) == 2
    assert len(hints) == 1
    assert len(at.get("component_instance")) == len(maps_shown)

    other = _data_page()  # another user with the same file: nothing built again
    other.file_uploader(key="customers_file").upload("mine.csv", data, "text/csv")
    _ok(other.run())
    assert any("150 customers from mine.csv" in i.value for i in other.info)
    assert len(builds) == 2
    assert len(hints) == 1

    other.file_uploader(key="customers_file").upload(
        "mine.csv", _customers_csv(90, seed=7), "text/csv"
    )
    _ok(other.run())  # a different file (same name): its own map and hint
    assert any("90 customers from mine.csv" in i.value for i in other.info)
    assert len(builds) == 3
    assert len(hints) == 2
    assert len(hashes) == graph_hashes
