"""Results in people's words (planner.results.display): the sentence of what a solve ran on."""

from __future__ import annotations

from planner.results.display import data_summary


def test_data_summary_names_every_count_it_has_and_skips_the_empty_ones() -> None:
    assert (
        data_summary(customers=300, sites=62, existing=2, roads="Liechtenstein")
        == "300 customers, 62 candidate sites (2 existing); roads of Liechtenstein"
    )
    assert data_summary(
        customers=12_000,
        left_out=3,
        sites=1_500,
        partners=40,
        roads="Malta",
        osm_date="2026-11-30",
    ) == (
        "12,000 customers (3 left out), 1,500 candidate sites (0 existing), 40 partner shops; "
        "roads of Malta, OpenStreetMap data of 2026-11-30"
    )
