"""The road-class vocabulary: one definition of which OSM ``highway`` values mean what.

Every module that needs "main roads" takes them from here: generated candidate sites sit on
:data:`CANDIDATE_ROAD_CLASSES`, maps draw :data:`MAIN_ROAD_CLASSES`, and the "slower roads"
robustness case slows :data:`MAIN_ROAD_CLASSES` down.
"""

from __future__ import annotations

#: OSM ``highway`` classes that count as main roads, most important first.
MAIN_ROAD_CLASSES: tuple[str, ...] = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "motorway_link",
    "trunk_link",
    "primary_link",
    "secondary_link",
    "tertiary_link",
)

#: Main roads where a workshop can stand (no motorways), best first.
CANDIDATE_ROAD_CLASSES: tuple[str, ...] = tuple(
    c for c in MAIN_ROAD_CLASSES[1:] if not c.startswith("motorway")
)

#: Fallback for generated candidates when a region has too few main-road nodes near demand.
MINOR_ROAD_CLASSES: tuple[str, ...] = ("unclassified", "residential", "living_street", "road")
