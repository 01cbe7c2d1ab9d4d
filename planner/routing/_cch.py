"""Customizable contraction hierarchies (RoutingKit, via ``routingkit-cch``) for big matrices.

A CCH is built once per road graph: a nested-dissection node order (``compute_order_inertial``,
from the graph's topology and node coordinates, seconds to minutes on a country), the
contraction (``CCH``) and the customization with the travel times (``CCHMetric``). Then one
elimination-tree sweep answers the distances from one point to every *pinned* node
(``CCHManyToOne``: all pinned sources to one target; ``CCHOneToMany``: one source to all pinned
targets), PHAST-like when many nodes are pinned.

Precision: RoutingKit takes integer weights. Edge travel times are rounded to
:data:`CCH_UNIT_S` (1 ms), so a CCH distance is the exact shortest path of the rounded
metric: it differs from the float Dijkstra distance by at most ``0.5 ms`` per edge of the
path (and 0.5 ms for each rounded snap offset of the swept side). Trips longer than
``(2**31 - 1)`` ms (596 hours) would be reported unreachable.

Caches: the node order is kept on disk under ``$PLANNER_CACHE_DIR/cch`` (``.npz``, keyed by the
graph's topology and coordinates, so re-weighted graphs reuse it); the built CCH and metric are
kept in memory per process (keyed by topology and weights), so every chunk of a matrix and every
later matrix on the same graph reuse them; on Dask each worker builds them once.

The binding releases the GIL during a sweep, so chunks run on threads; its query objects
must stay on the thread that created them, so every chunk creates its own.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import routingkit_cch as rk

from planner.roads import _cache
from planner.settings import cache_dir

logger = logging.getLogger(__name__)

#: Integer unit of the CCH weights, in seconds.
CCH_UNIT_S = 1e-3

#: Largest weight RoutingKit accepts (its ``inf_weight`` is ``2**31 - 1``).
_MAX_WEIGHT = 2**31 - 2

#: Bump when the order computation changes (invalidates cached orders).
CCH_ORDER_VERSION = "cch-order-1"

#: Built indexes kept in memory per process.
_INDEX_SLOTS = 2


@dataclass(frozen=True, eq=False)
class CchInput:
    """Everything needed to build the CCH of a graph: small, picklable, shipped to workers.

    Attributes
    ----------
    key
        Hash of topology and weights (the in-memory cache key).
    order
        Nested-dissection node order.
    tail, head
        Arc end positions (parallel arcs merged, as in the CSR matrix).
    weight
        Arc travel times in :data:`CCH_UNIT_S` units.
    """

    key: str
    order: npt.NDArray[np.uint32]
    tail: npt.NDArray[np.uint32]
    head: npt.NDArray[np.uint32]
    weight: npt.NDArray[np.uint32]

    @property
    def n_nodes(self) -> int:
        """Number of graph nodes."""
        return int(self.order.size)


def _digest(*arrays: npt.NDArray[Any]) -> str:
    h = hashlib.sha256()
    for arr in arrays:
        h.update(str(arr.dtype).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
        h.update(b"|")
    return h.hexdigest()[:40]


def _node_order(
    n: int,
    tail: npt.NDArray[np.uint32],
    head: npt.NDArray[np.uint32],
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    *,
    progress: Callable[[str, float], None] | None = None,
) -> npt.NDArray[np.uint32]:
    """The inertial nested-dissection order, from the disk cache when it is there."""
    key = _digest(tail, head, lon, lat, np.frombuffer(CCH_ORDER_VERSION.encode(), np.uint8))
    path = cache_dir("cch") / f"order-{key}.npz"
    if path.is_file():
        try:
            with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
                order = np.asarray(npz["order"], dtype=np.uint32)
            if order.size == n and np.array_equal(np.sort(order), np.arange(n, dtype=np.uint32)):
                return order
            _cache.warn_invalid("CCH order", path, "not a permutation of the graph's nodes")
        except Exception as exc:  # unreadable: recompute, never crash
            _cache.warn_invalid("CCH order", path, f"unreadable: {type(exc).__name__}: {exc}")
    if progress is not None and n >= 100_000:
        progress(
            f"Contraction hierarchy: ordering {n:,} road nodes (once per road network, then "
            f"cached), ETA {_ORDER_S_PER_NODE * n:.0f} s",
            0.0,
        )
    started = time.perf_counter()
    order = np.asarray(
        rk.compute_order_inertial(
            n, tail.tolist(), head.tolist(), lat.astype(float).tolist(), lon.astype(float).tolist()
        ),
        dtype=np.uint32,
    )
    logger.info("CCH node order of %d nodes in %.1f s", n, time.perf_counter() - started)
    try:
        with _cache.atomic_file(path) as out:
            np.savez(out, order=order)
    except OSError as exc:
        logger.warning("could not write CCH order cache %s: %s", path, exc)
    return order


#: Seconds per graph node of the inertial node order on the 2-core benchmark machine
#: (46.7 s for 925,696 nodes, benchmarks/README.md), for the ETA.
_ORDER_S_PER_NODE = 5e-5


def cch_input(
    csr: Any,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    progress: Callable[[str, float], None] | None = None,
) -> CchInput:
    """The CCH input of a graph given as its CSR weight matrix (seconds) and node coordinates.

    Parameters
    ----------
    csr
        ``n x n`` scipy CSR matrix, travel times in seconds (parallel edges merged).
    lon, lat
        Node coordinates in degrees (for the inertial order).
    progress
        ``progress(message, fraction)`` before a node order is computed (not cached yet).

    Returns
    -------
    CchInput
    """
    n = int(csr.shape[0])
    head = np.asarray(csr.indices, dtype=np.uint32)
    tail = np.repeat(np.arange(n, dtype=np.uint32), np.diff(csr.indptr))
    units = np.rint(np.asarray(csr.data, dtype=np.float64) / CCH_UNIT_S)
    weight = np.minimum(units, _MAX_WEIGHT).astype(np.uint32)
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    order = _node_order(n, tail, head, lon_a, lat_a, progress=progress)
    key = _digest(tail, head, weight)
    return CchInput(key=key, order=order, tail=tail, head=head, weight=weight)


class _Index:
    """A built CCH and its metric (thread-safe to share; queries are per thread)."""

    def __init__(self, inp: CchInput) -> None:
        started = time.perf_counter()
        self.cch = rk.CCH(inp.order.tolist(), inp.tail.tolist(), inp.head.tolist(), False)
        self.metric = rk.CCHMetric(self.cch, inp.weight.tolist())
        logger.info(
            "CCH of %d nodes built and customized in %.1f s",
            inp.n_nodes,
            time.perf_counter() - started,
        )


_indexes: OrderedDict[str, _Index] = OrderedDict()
_indexes_lock = threading.Lock()


def _index_of(inp: CchInput) -> _Index:
    """The built CCH of ``inp``, built once per process and kept for later calls."""
    with _indexes_lock:
        index = _indexes.get(inp.key)
        if index is None:
            index = _Index(inp)
            _indexes[inp.key] = index
            while len(_indexes) > _INDEX_SLOTS:
                _indexes.popitem(last=False)
        else:
            _indexes.move_to_end(inp.key)
        return index


def prepare(inp: CchInput) -> None:
    """Build (or find) the CCH of ``inp`` in this process, so chunks do not wait on it."""
    _index_of(inp)


def _seconds(distances: list[int | None]) -> npt.NDArray[np.float64]:
    """Distances from the binding (units, None = unreachable) as float seconds, inf unreachable."""
    try:
        units = np.array(distances, dtype=np.int64)
    except TypeError:  # some None: the slow path
        units = np.array(distances, dtype=np.float64)  # None -> nan
        seconds = np.multiply(units, CCH_UNIT_S, dtype=np.float64)
        seconds[np.isnan(seconds)] = np.inf
        return seconds
    return units.astype(np.float64) * CCH_UNIT_S


def _pairs(node_a: int, off_a: float, node_b: int, off_b: float) -> list[tuple[int, int]]:
    pairs = [(node_a, round(off_a / CCH_UNIT_S))] if np.isfinite(off_a) else []
    if np.isfinite(off_b):
        pairs.append((node_b, round(off_b / CCH_UNIT_S)))
    return pairs


def sweep_chunk(shared: tuple[Any, ...], chunk: tuple[Any, ...]) -> npt.NDArray[np.float64]:
    """One block of a matrix by CCH sweeps: pinned side x a chunk of swept points.

    ``shared = (inp, pinned, r1, t1, r2, t2, reverse)``: the CCH input; the pinned node
    positions (unique); per point of the pinned side two entries (row into ``pinned``, time in
    seconds, ``inf`` = no such entry). ``reverse`` False pins sources and sweeps to each swept
    point (distances *from* the pinned nodes), True pins targets and sweeps from each swept point.
    ``chunk = (n1, o1, n2, o2)``: per swept point two entry nodes and their offsets (seconds).

    Returns
    -------
    numpy.ndarray
        ``len(r1) x len(n1)``: for each pinned-side point and swept point the shortest time
        over both entries of both, ``inf`` when unreachable.
    """
    inp, pinned, r1, t1, r2, t2, reverse = shared
    n1, o1, n2, o2 = chunk
    index = _index_of(inp)
    pinned_list = pinned.tolist()
    query: Any
    if reverse:
        query = rk.CCHOneToMany(index.metric, pinned_list)
        ask = query.distances_from_multi
    else:
        query = rk.CCHManyToOne(index.metric, pinned_list)
        ask = query.distances_to_multi
    out = np.empty((len(n1), r1.size), dtype=np.float64)
    has2 = np.isfinite(t2)
    for k, (a, oa, b, ob) in enumerate(
        zip(n1.tolist(), o1.tolist(), n2.tolist(), o2.tolist(), strict=True)
    ):
        pairs = _pairs(a, oa, b, ob)
        if not pairs:
            out[k] = np.inf
            continue
        dist = _seconds(ask(pairs))
        row = t1 + dist[r1]
        np.minimum(row, np.where(has2, t2 + dist[r2], np.inf), out=row)
        out[k] = row
    del query  # dropped on this thread, as the binding requires
    return out.T
