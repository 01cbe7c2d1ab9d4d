"""Bad road files: one check (planner/roads/osm_file.py) and the same clear error from every door.

An empty file, an XML entity bomb ("billion laughs") and a web page, each saved under an OSM
name, go through the road reader (osmnx and array loaders), the OSM features reader, the CLI
(``planner run --region FILE`` and ``planner validate``: exit code 2) and the app's road upload.
Every one ends in ``"<file>: not an OSM file: <why>"``; none is parsed with entity expansion.
"""

from __future__ import annotations

import bz2
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from planner.cli import main
from planner.errors import GraphError
from planner.roads.features import read_osm_features
from planner.roads.network import load_region
from planner.roads.osm_file import check_osm_file

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
MALTA_PBF = REPO / "data" / "osm" / "malta-2018-08-27.osm.pbf"

# ten levels of ten: 10**9 copies of "lol" (3 GB) if an XML parser expanded it
_LOLS = "\n".join(
    f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' if i else ' <!ENTITY lol0 "lol">'
    for i in range(10)
)
BOMB = (
    f'<?xml version="1.0"?>\n<!DOCTYPE osm [\n{_LOLS}\n]>\n'
    '<osm version="0.6"><node id="1" lat="35.9" lon="14.5">'
    '<tag k="name" v="&lol9;"/><tag k="shop" v="bakery"/></node></osm>\n'
).encode()
PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Geofabrik Download Server</title></head>"
    b"<body><a href='malta-latest.osm.pbf'>malta-latest.osm.pbf</a></body></html>\n"
)
#: file content -> what the message must say
BAD: dict[str, tuple[bytes, str]] = {
    "empty": (b"", r"the file is empty \(0 bytes\)"),
    "bomb": (BOMB, r"XML entities .*XML bomb"),
    "page": (PAGE, r"web page \(HTML\)"),
}
NOT_OSM = r"not an OSM file: "


def _write(tmp_path: Path, kind: str, name: str) -> Path:
    path = tmp_path / name
    data = BAD[kind][0]
    path.write_bytes(bz2.compress(data) if name.endswith(".bz2") and data else data)
    return path


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("name", ["roads.osm", "roads.osm.bz2", "roads.xml"])
def test_road_and_features_readers_give_the_same_error(
    tmp_path: Path, kind: str, name: str
) -> None:
    path = _write(tmp_path, kind, name)
    why = BAD[kind][1]
    messages = []
    for read in (
        lambda: load_region(path, cache=False),
        lambda: load_region(path, cache=False, loader="osmnx"),
        lambda: read_osm_features(path),
        lambda: check_osm_file(path),
    ):
        started = time.perf_counter()
        with pytest.raises(GraphError, match=NOT_OSM + ".*" + why) as err:
            read()
        assert time.perf_counter() - started < 5  # refused, not parsed
        assert str(err.value).startswith(f"{path}: ")
        assert "download.geofabrik.de" in str(err.value)
        messages.append(str(err.value))
    assert len(set(messages)) == 1, messages  # one check, one message


@pytest.mark.parametrize("kind", ["empty", "page"])
def test_pbf_loaders_give_the_same_error(tmp_path: Path, kind: str) -> None:
    path = _write(tmp_path, kind, "roads.osm.pbf")
    for loader in ("auto", "osmnx", "arrays"):
        with pytest.raises(GraphError, match=NOT_OSM + ".*" + BAD[kind][1]):
            load_region(path, cache=False, loader=loader)
    with pytest.raises(GraphError, match=NOT_OSM + ".*" + BAD[kind][1]):
        read_osm_features(path)


def test_other_files_under_osm_names(tmp_path: Path) -> None:
    xml = tmp_path / "roads.osm.pbf"
    xml.write_bytes(b"<?xml version='1.0'?>\n<osm version='0.6'></osm>\n")
    with pytest.raises(GraphError, match=NOT_OSM + r".*it is OSM XML: rename it to \.osm"):
        load_region(xml, cache=False)
    graphml = tmp_path / "roads.graphml"
    graphml.write_bytes(BOMB.replace(b"osm", b"graphml"))
    with pytest.raises(GraphError, match=NOT_OSM + ".*XML bomb"):
        load_region(graphml, cache=False)
    text = tmp_path / "notes.osm"
    text.write_bytes(b"id,lat,lon\n1,35.9,14.5\n")
    with pytest.raises(GraphError, match=NOT_OSM + "it is not XML"):
        read_osm_features(text)
    # a declaration hidden behind 64 KB of comment is still found before the root element
    hidden = tmp_path / "hidden.osm"
    hidden.write_bytes(b"<?xml version='1.0'?>\n<!--" + b"x" * 65536 + b"-->\n" + BOMB[22:])
    with pytest.raises(GraphError, match=NOT_OSM + ".*XML bomb"):
        read_osm_features(hidden)


def test_good_files_pass_the_check(tmp_path: Path) -> None:
    assert check_osm_file(MALTA_PBF) == "pbf"
    bundled = sorted((REPO / "data" / "osm").glob("*.osm.bz2"))
    assert bundled
    for path in bundled:
        assert check_osm_file(path) == "osm"
    plain = tmp_path / "plain.osm"
    plain.write_bytes(b"<?xml version='1.0' encoding='UTF-8'?>\n<osm version='0.6'/>\n")
    assert check_osm_file(plain) == "osm"
    # an upload is checked from its bytes, named by its own name
    assert check_osm_file("upload.osm.pbf", data=MALTA_PBF.read_bytes()[:4096]) == "pbf"
    with pytest.raises(GraphError, match=r"^page\.osm: not an OSM file: it is a web page"):
        check_osm_file("page.osm", data=PAGE)


@pytest.mark.parametrize("kind", sorted(BAD))
def test_cli_exit_code_2(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANNER_OFFLINE", "1")
    path = _write(tmp_path, kind, "roads.osm")
    customers = tmp_path / "customers.csv"
    customers.write_text("id,lat,lon\n1,35.9,14.5\n", encoding="utf-8")
    why = BAD[kind][1]
    for argv in (
        ["run", "--region", str(path), "--out", str(tmp_path / "out")],
        ["run", "--region", str(path), "--customers", str(customers), "--out", str(tmp_path)],
        ["validate", str(customers), "--region", str(path)],
    ):
        assert main(argv) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        err = lines[-1]  # after any progress lines: one error line, no traceback
        assert err.startswith(f"error: {path}: not an OSM file: "), lines
        assert not any("Traceback" in line for line in lines), lines
        assert re.search(why, err), err
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("offline_app")
@pytest.mark.parametrize("kind", sorted(BAD))
def test_app_upload_is_refused(kind: str) -> None:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["region"] = "liechtenstein"
    at.run()
    assert not at.exception
    at.file_uploader(key="roads_file").upload("roads.osm", BAD[kind][0], "application/xml")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(
        e.startswith("**roads.osm cannot be used**: roads.osm: not an OSM file: ") for e in errors
    ), errors
    assert any(re.search(BAD[kind][1], e) for e in errors), errors
    assert not [b for b in at.button if b.label == "Use these roads"]
    assert at.session_state["region"] == "liechtenstein"
    assert not at.session_state["road_files"]  # not kept, not offered as a region
