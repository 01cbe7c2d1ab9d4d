"""Regenerate the committed demo files in ``data/demo/``.

Usage::

    .venv/bin/python scripts/make_demo_data.py

``malta_customers.csv`` is sampled from the bundled Malta OSM buildings
(``data/osm/malta-2018-08-27-features.osm.bz2``) with seed 0; the road graph is the bundled Malta
drive network (largest connected part: the main island). Buildings on Gozo and Comino, which
reach the main island only by ferry, are therefore left out. The output is deterministic: rerun
the script and ``git diff`` shows nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import osmnx as ox

from planner.demand import generate_demo_customers

ROOT = Path(__file__).resolve().parent.parent
OSM = ROOT / "data" / "osm"
DEMO = ROOT / "data" / "demo"
N_CUSTOMERS = 2000
SEED = 0


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    DEMO.mkdir(parents=True, exist_ok=True)
    # the node positions are all the generator needs, so the raw osmnx graph is enough
    graph = ox.graph_from_xml(OSM / "malta-2018-08-27-drive.osm.bz2", simplify=True)
    customers = generate_demo_customers(
        OSM / "malta-2018-08-27-features.osm.bz2", N_CUSTOMERS, seed=SEED, graph=graph
    )
    out = customers.rename(columns={"customer_id": "id"})[["id", "lat", "lon", "weight", "segment"]]
    out["weight"] = out["weight"].astype(int)
    out.to_csv(DEMO / "malta_customers.csv", index=False, float_format="%.6f", lineterminator="\n")
    logging.info("wrote %d customers: %s", len(out), out["segment"].value_counts().to_dict())


if __name__ == "__main__":
    main()
