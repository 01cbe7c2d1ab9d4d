"""A map of area trends: one layer per segment, hexagons coloured rising / stable / falling.

Save it as a standalone offline page with :func:`planner.outputs.maps.save_map` (``planner
trends`` writes ``trends.html`` that way).
"""

from __future__ import annotations

import folium
import numpy as np
import pandas as pd

__all__ = ["TREND_COLORS", "trends_map"]

#: Fill colour per trend flag.
TREND_COLORS: dict[str, str] = {"rising": "#d7301f", "stable": "#9e9e9e", "falling": "#2b8cbe"}
OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"


def _outline(area_id: str, lat: float, lon: float) -> list[tuple[float, float]] | None:
    import h3

    if h3.is_valid_cell(area_id):
        return [tuple(p) for p in h3.cell_to_boundary(area_id)]
    return None


def _label(row: pd.Series) -> str:
    growth = row["growth_per_year"]
    if not np.isfinite(growth):
        jobs = int(row["jobs_last_12m"])
        return f"{row['segment']}: {jobs} jobs in the last 12 months, too few for a trend"
    return (
        f"{row['segment']}: {growth:+.0%} per year (interval {row['low']:+.0%} to "
        f"{row['high']:+.0%}), {row['trend']}; {int(row['jobs_last_12m'])} jobs in the last "
        "12 months"
    )


def trends_map(areas: pd.DataFrame, *, tiles: str | None = None) -> folium.Map:
    """Map of :func:`planner.register.trends.area_trends`: hexagons (or circles for territories).

    Parameters
    ----------
    areas
        Area trends (``area_id``, ``lat``, ``lon``, ``segment``, ``growth_per_year``, ``low``,
        ``high``, ``trend``, ``jobs_last_12m``).
    tiles
        Background tiles (``"OpenStreetMap"``), or None for none (offline).
    """
    lat = areas["lat"].to_numpy(float) if len(areas) else np.array([0.0])
    lon = areas["lon"].to_numpy(float) if len(areas) else np.array([0.0])
    m = folium.Map(location=[float(lat.mean()), float(lon.mean())], zoom_start=11, tiles=None)
    if tiles is not None:
        folium.TileLayer(tiles, attr=OSM_ATTRIBUTION, name="OpenStreetMap tiles").add_to(m)
    for segment, rows in areas.groupby("segment", sort=True):
        layer = folium.FeatureGroup(name=f"{segment} demand trend", show=True)
        for _, row in rows.iterrows():
            color = TREND_COLORS.get(str(row["trend"]), TREND_COLORS["stable"])
            outline = _outline(str(row["area_id"]), float(row["lat"]), float(row["lon"]))
            opacity = 0.55 if row["trend"] != "stable" else 0.2
            if outline is not None:
                folium.Polygon(
                    outline,
                    color=color,
                    weight=1,
                    fill=True,
                    fill_color=color,
                    fill_opacity=opacity,
                    tooltip=_label(row),
                ).add_to(layer)
            else:
                folium.CircleMarker(
                    [float(row["lat"]), float(row["lon"])],
                    radius=10,
                    color=color,
                    fill=True,
                    fill_opacity=opacity,
                    tooltip=_label(row),
                ).add_to(layer)
        layer.add_to(m)
    if len(areas):
        m.fit_bounds([[float(lat.min()), float(lon.min())], [float(lat.max()), float(lon.max())]])
    folium.LayerControl(collapsed=False).add_to(m)
    return m
