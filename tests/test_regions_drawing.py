"""A shape drawn on the Data page map becomes the same area as the W,S,E,N numbers."""

from __future__ import annotations

import pytest

from planner.engine.regions import area_from_drawing
from planner.errors import InputError
from planner.roads.trim import area_from_bbox

RING = [[9.5, 47.1], [9.5, 47.16], [9.56, 47.16], [9.56, 47.1], [9.5, 47.1]]


def test_drawn_rectangle_is_the_box_of_its_corners() -> None:
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [RING]},
    }
    area = area_from_drawing(feature)
    assert area == area_from_bbox("9.5,47.1,9.56,47.16")
    assert area.describe() == "in the box 9.5,47.1,9.56,47.16"
    # a bare geometry, and a shape that is not a rectangle: its bounding box
    assert area_from_drawing({"type": "Polygon", "coordinates": [RING]}) == area
    triangle = [[9.5, 47.1], [9.56, 47.13], [9.52, 47.16], [9.5, 47.1]]
    assert area_from_drawing({"type": "Polygon", "coordinates": [triangle]}).bbox == area.bbox


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"type": "Feature", "geometry": None},
        {"type": "Polygon", "coordinates": []},
        {"type": "Polygon", "coordinates": [[["a", "b"]]]},
        {"type": "Point", "coordinates": [9.5, 47.1]},  # a point has no extent
    ],
)
def test_not_a_drawn_box_is_a_clear_error(bad: dict) -> None:
    with pytest.raises(InputError, match="box"):
        area_from_drawing(bad)
