"""Disk cache of prepared road graphs and matrices, without pickle.

A prepared graph is stored as a directory holding ``nodes.parquet``, ``edges.parquet`` and
``graph.json``; ``graph.json`` carries the entry header of :mod:`planner.roads._cache` (what the
graph was built from, node and edge counts, a SHA-256 of each Parquet file), and an entry that
fails to read or to check is ignored with one warning, so the caller rebuilds it.

Attribute columns keep their Python types on a round trip: numbers, booleans and
strings map to Arrow types, shapely geometries to WKB, and anything else (the lists that osmnx
simplification leaves in ``osmid``, ``highway``, ``name``...) to JSON text. Reading the cache needs
only pyarrow, shapely and networkx, so a warm load does not pay the cost of importing osmnx.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from planner.roads import _cache

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 3

#: Payload files of one entry, each with a SHA-256 in the header.
_PARTS = ("nodes.parquet", "edges.parquet")


def _column_kind(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "null"
    if all(isinstance(v, bool | np.bool_) for v in present):
        return "bool"
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in present):
        return "int"
    if all(isinstance(v, int | float | np.integer | np.floating) for v in present):
        return "float"
    if all(isinstance(v, str) for v in present):
        return "str"
    if all(hasattr(v, "wkb") and hasattr(v, "geom_type") for v in present):
        return "geometry"
    return "json"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    msg = f"cannot store attribute value of type {type(value).__name__} in the graph cache"
    raise TypeError(msg)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _is_float(v: Any) -> bool:
    return isinstance(v, float | np.floating)


def _is_other(v: Any) -> bool:
    return not (_is_str(v) or _is_int(v) or _is_float(v))


_MIXED_PARTS = (("str", _is_str), ("int", _is_int), ("float", _is_float), ("json", _is_other))


def _to_table(records: list[Mapping[str, Any]], index: dict[str, list[Any]]) -> tuple[Any, dict]:
    import pyarrow as pa
    import shapely

    keys: list[str] = []
    seen: set[str] = set()
    for rec in records:
        for k in rec:
            if k not in seen:
                seen.add(k)
                keys.append(k)
    columns: dict[str, Any] = {
        name: pa.array(vals, type=pa.int64()) for name, vals in index.items()
    }
    mixed_types = {
        "str": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "json": pa.string(),
    }
    kinds: dict[str, str] = {}
    for key in keys:
        values = [rec.get(key) for rec in records]
        kind = _column_kind(values)
        kinds[key] = kind
        if kind == "bool":
            arr = pa.array([None if v is None else bool(v) for v in values], type=pa.bool_())
        elif kind == "int":
            arr = pa.array([None if v is None else int(v) for v in values], type=pa.int64())
        elif kind == "float":
            arr = pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        elif kind == "str":
            arr = pa.array(values, type=pa.string())
        elif kind == "geometry":
            wkb = [None if v is None else shapely.to_wkb(v) for v in values]
            arr = pa.array(wkb, type=pa.binary())
        elif kind == "null":
            arr = pa.nulls(len(values))
        else:
            # mixed column (osmnx leaves lists where simplification merged ways): scalars keep
            # their own typed columns and only the rest is JSON text, so reading stays fast
            for part, test in _MIXED_PARTS:
                vals = [v if v is not None and test(v) else None for v in values]
                if part == "json":
                    vals = [
                        None if v is None else json.dumps(v, default=_json_default) for v in vals
                    ]
                columns[f"a:{key}|{part}"] = pa.array(vals, type=mixed_types[part])
            continue
        columns[f"a:{key}"] = arr
    return pa.table(columns), kinds


def _from_table(table: Any, kinds: Mapping[str, str]) -> list[dict[str, Any]]:
    import shapely

    n = table.num_rows
    records: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, kind in kinds.items():
        if kind == "null":
            continue
        if kind == "json":
            merged: list[Any] = [None] * n
            for part, _ in _MIXED_PARTS:
                vals = table.column(f"a:{key}|{part}").to_pylist()
                if part == "json":
                    vals = [None if v is None else json.loads(v) for v in vals]
                merged = [m if v is None else v for m, v in zip(merged, vals, strict=True)]
            for rec, value in zip(records, merged, strict=True):
                if value is not None:
                    rec[key] = value
            continue
        col = table.column(f"a:{key}")
        if kind == "geometry":
            raw = col.to_pylist()
            mask = np.array([v is not None for v in raw], dtype=bool)
            geoms = np.empty(n, dtype=object)
            if mask.any():
                geoms[mask] = shapely.from_wkb([v for v in raw if v is not None])
            values: Iterable[Any] = (g if m else None for g, m in zip(geoms, mask, strict=True))
        else:
            values = col.to_pylist()
        for rec, value in zip(records, values, strict=True):
            if value is not None:
                rec[key] = value
    return records


def _shape_of(nodes: int, edges: int) -> dict[str, int]:
    return {"nodes": int(nodes), "edges": int(edges)}


def write_graph(
    G: nx.MultiDiGraph, path: Path, *, built_from: Mapping[str, Any] | None = None
) -> None:
    """Write a MultiDiGraph to the cache directory ``path`` (atomically replaced).

    Parameters
    ----------
    G
        Graph whose node ids are integers.
    path
        Target directory; it is created, or replaced when it exists.
    built_from
        What the graph was built from (cache key, source hash, code version), recorded in the
        entry header and checked by :func:`read_graph`.
    """
    import pyarrow.parquet as pq

    node_ids = list(G.nodes)
    node_table, node_kinds = _to_table([G.nodes[n] for n in node_ids], {"node": node_ids})
    us, vs, ks, recs = [], [], [], []
    for u, v, k, data in G.edges(keys=True, data=True):
        us.append(u)
        vs.append(v)
        ks.append(k)
        recs.append(data)
    edge_table, edge_kinds = _to_table(recs, {"u": us, "v": vs, "key": ks})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=path.parent))
    try:
        pq.write_table(node_table, tmp / "nodes.parquet")
        pq.write_table(edge_table, tmp / "edges.parquet")
        sums = {name: _cache.sha256_hex((tmp / name).read_bytes()) for name in _PARTS}
        header = _cache.make_header(
            built_from={**(built_from or {}), **_shape_of(len(node_ids), len(us))},
            payload_sha256=sums,
        )
        meta = {
            "format": _FORMAT_VERSION,
            "cache": header,
            "graph": dict(G.graph),
            "node_kinds": node_kinds,
            "edge_kinds": edge_kinds,
        }
        (tmp / "graph.json").write_text(json.dumps(meta, default=_json_default), encoding="utf-8")
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _add_edges(
    G: nx.MultiDiGraph,
    us: list[int],
    vs: list[int],
    keys: list[int],
    records: list[dict[str, Any]],
) -> None:
    """Add keyed edges to a fresh MultiDiGraph whose nodes all exist.

    ``add_edges_from`` spends most of a warm Malta load in per-edge view lookups, so this fills
    the adjacency dicts the way ``MultiDiGraph.add_edge`` does (networkx 3.x internals), and
    falls back to ``add_edges_from`` on a graph class without them.
    """
    succ = getattr(G, "_succ", None)
    pred = getattr(G, "_pred", None)
    factory = getattr(G, "edge_key_dict_factory", None)
    if succ is None or pred is None or factory is None or G.number_of_edges():
        G.add_edges_from(zip(us, vs, keys, records, strict=True))
        return
    for u, v, k, data in zip(us, vs, keys, records, strict=True):
        keydict = succ[u].get(v)
        if keydict is None:
            keydict = factory()
            succ[u][v] = keydict
            pred[v][u] = keydict
        keydict[k] = data
    clear_cache = getattr(nx.utils.misc, "_clear_cache", None)
    if clear_cache is not None:
        clear_cache(G)


def read_graph(
    path: Path, *, built_from: Mapping[str, Any] | None = None
) -> nx.MultiDiGraph | None:
    """Read a graph written by :func:`write_graph`; ``None`` if absent, unreadable or invalid.

    An entry whose files cannot be parsed, whose checksums or counts do not match its header,
    or that was built from something other than ``built_from`` is ignored with one warning
    line; the caller rebuilds it.

    Parameters
    ----------
    path
        Cache directory of one graph.
    built_from
        What the caller needs the graph to be built from (compared with the header).

    Returns
    -------
    networkx.MultiDiGraph or None
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta_path = path / "graph.json"
    if not path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT_VERSION:
            fmt = meta.get("format") if isinstance(meta, dict) else None
            _cache.warn_invalid("graph", path, f"format {fmt!r}, expected {_FORMAT_VERSION}")
            return None
        data = {name: (path / name).read_bytes() for name in _PARTS}
        nodes = pq.read_table(pa.BufferReader(data["nodes.parquet"]))
        edges = pq.read_table(pa.BufferReader(data["edges.parquet"]))
        reason = _cache.check_header(
            meta.get("cache"),
            built_from={**(built_from or {}), **_shape_of(nodes.num_rows, edges.num_rows)},
            payload_sha256={name: _cache.sha256_hex(raw) for name, raw in data.items()},
        )
        if reason is not None:
            _cache.warn_invalid("graph", path, reason)
            return None
        node_recs = _from_table(nodes, meta["node_kinds"])
        edge_recs = _from_table(edges, meta["edge_kinds"])
        G = nx.MultiDiGraph(**meta["graph"])
        G.add_nodes_from(zip(nodes.column("node").to_pylist(), node_recs, strict=True))
        _add_edges(
            G,
            edges.column("u").to_pylist(),
            edges.column("v").to_pylist(),
            edges.column("key").to_pylist(),
            edge_recs,
        )
    except Exception as exc:  # a corrupt cache entry is rebuilt, whatever the parser raises
        _cache.warn_invalid("graph", path, f"unreadable: {type(exc).__name__}: {exc}")
        return None
    return G
