"""The solves every session of a server shares: prepared instances, plans, comparisons,
K-curves and robustness cases, each built once per question and data.

A question is keyed by the scenario spec (as TOML text; a prepared instance by the fields that
change the data only, :data:`PREP_FIELDS`) and the input files' names and hashes, so ten users
asking the same thing at the same time build it once (:class:`planner.hosting.cache.SharedCache`).
An answer cut short by Stop is returned but not kept. No Streamlit: the app gives the caches
(one per name, kept for the server's life) and the road graph of a spec.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

import pandas as pd
import tomli_w

from planner.engine import (
    ScenarioInstance,
    ScenarioSpec,
    compare,
    k_curve,
    prepare_scenario,
    robustness,
    run,
)
from planner.engine.workspace import InputFile
from planner.hosting.cache import SharedCache
from planner.hosting.jobs import Progress, StopCallback
from planner.results.types import Comparison, LayoutResult, Robustness
from planner.roads.network import RoadGraph

T = TypeVar("T")

__all__ = ["CACHE_SIZES", "PREP_FIELDS", "SharedSolves", "file_key", "spec_key"]

#: The shared caches the solves use, by name, with how many entries each keeps.
CACHE_SIZES: dict[str, int] = {
    "instances": 8,
    "results": 64,
    "comparisons": 16,
    "k_curves": 16,
    "robustness": 16,
}

#: Spec fields that change a prepared instance (the data), not only its solve.
PREP_FIELDS = (
    "region",
    "seed",
    "congestion",
    "speeds",
    "crs",
    "n_candidates",
    "generate_candidates",
    "two_tier_partners",
    "max_snap_m",
    "product_class",
    "objective",
    "bbox",
    "margin_km",
)

#: ``caches(name, size)``: the server's shared cache of that name.
Caches = Callable[[str, int], SharedCache]
#: ``graph_for(spec, customers, progress)``: the road graph a spec is solved on.
GraphFor = Callable[[ScenarioSpec, InputFile | None, Progress | None], RoadGraph]


def spec_key(spec: ScenarioSpec, fields: Iterable[str] | None = None) -> str:
    """The spec (or its ``fields``) as TOML text: equal questions, equal keys."""
    values = spec.to_dict()
    if fields is not None:
        values = {k: values[k] for k in fields if k in values}
    return tomli_w.dumps(values)


def file_key(upload: InputFile | None) -> str | None:
    """An input file by name and content hash (None: no file, the demo data)."""
    return None if upload is None else f"{upload.name}:{upload.sha256}"


@dataclasses.dataclass(frozen=True)
class SharedSolves:
    """The engine's calls on a spec and its input files, through the server's shared caches.

    Parameters
    ----------
    caches
        The server's shared cache of a name (``instances``, ``results``, ``comparisons``,
        ``k_curves``, ``robustness``).
    graph_for
        The road graph of a spec and its customer file (trimmed as the app trims it).
    """

    caches: Caches
    graph_for: GraphFor

    def _cache(self, name: str) -> SharedCache:
        return self.caches(name, CACHE_SIZES[name])

    def _unless_stopped(
        self, name: str, key: Hashable, build: Callable[[], T], should_stop: StopCallback | None
    ) -> T:
        """``build``'s value through the cache ``name``; one cut short by ``should_stop`` is
        returned but not kept."""
        cache = self._cache(name)
        value = cache.get(key, build)
        if should_stop is not None and should_stop():
            cache.forget(key)
        return value

    def prepared(
        self,
        spec: ScenarioSpec,
        customers: InputFile | None,
        sites: InputFile | None,
        layouts: tuple[str, ...],
        *,
        progress: Progress | None = None,
    ) -> ScenarioInstance:
        """The prepared instance (snapped points, matrix) for the data of ``spec``, shared."""
        key = (spec_key(spec, PREP_FIELDS), file_key(customers), file_key(sites), layouts)

        def build() -> ScenarioInstance:
            return prepare_scenario(
                spec,
                layouts=layouts,
                graph=self.graph_for(spec, customers, progress),
                customers=None if customers is None else customers.open(),
                sites=None if sites is None else sites.open(),
                progress=progress,
            )

        sinst = self._cache("instances").get(key, build)
        return dataclasses.replace(sinst, spec=spec)

    def solve(
        self,
        spec: ScenarioSpec,
        customers: InputFile | None,
        sites: InputFile | None,
        *,
        progress: Progress | None = None,
        should_stop: StopCallback | None = None,
    ) -> LayoutResult:
        """``planner.engine.run`` on the spec and files; an answer cut short by
        ``should_stop`` is returned but not kept."""
        key = (spec_key(spec), file_key(customers), file_key(sites))

        def build() -> LayoutResult:
            sinst = self.prepared(spec, customers, sites, (spec.layout,), progress=progress)
            return run(spec, sinst=sinst, progress=progress, should_stop=should_stop)

        return self._unless_stopped("results", key, build, should_stop)

    def compare(
        self,
        spec: ScenarioSpec,
        customers: InputFile | None,
        sites: InputFile | None,
        layouts: tuple[str, ...],
        *,
        progress: Progress | None = None,
        should_stop: StopCallback | None = None,
    ) -> Comparison:
        """``planner.engine.compare`` of ``layouts``; a comparison cut short by
        ``should_stop`` is returned but not kept."""
        key = (spec_key(spec), file_key(customers), file_key(sites), layouts)

        def build() -> Comparison:
            sinst = self.prepared(spec, customers, sites, layouts, progress=progress)
            return compare(
                spec, layouts=layouts, sinst=sinst, progress=progress, should_stop=should_stop
            )

        return self._unless_stopped("comparisons", key, build, should_stop)

    def k_curve(
        self,
        spec: ScenarioSpec,
        customers: InputFile | None,
        sites: InputFile | None,
        layout: str,
        k_max: int,
        *,
        progress: Progress | None = None,
    ) -> pd.DataFrame:
        """``planner.engine.k_curve`` of ``layout`` from 1 to ``k_max`` workshops."""
        key = (spec_key(spec), file_key(customers), file_key(sites), layout, k_max)

        def build() -> pd.DataFrame:
            sinst = self.prepared(
                spec.replace(layout=layout), customers, sites, (layout,), progress=progress
            )
            return k_curve(sinst, k_max, layout=layout, progress=progress)

        return self._cache("k_curves").get(key, build)

    def robustness(
        self,
        spec: ScenarioSpec,
        customers: InputFile | None,
        sites: InputFile | None,
        layout: str,
        *,
        growth: float,
        slowdown: float,
        progress: Progress | None = None,
    ) -> Robustness:
        """``planner.engine.robustness`` of ``layout`` with business growth and slower roads."""
        key = (spec_key(spec), file_key(customers), file_key(sites), layout, growth, slowdown)

        def build() -> Robustness:
            sinst = self.prepared(
                spec.replace(layout=layout), customers, sites, (layout,), progress=progress
            )
            return robustness(
                sinst,
                layout=layout,
                growth={"business": growth},
                slowdown=1.0 + slowdown,
                progress=progress,
            )

        return self._cache("robustness").get(key, build)
