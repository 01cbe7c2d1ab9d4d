"""Regenerate the committed demo files in ``data/demo/``.

Usage::

    .venv/bin/python scripts/make_demo_data.py

``malta_customers.csv`` is sampled from the bundled Malta OSM buildings
(``data/osm/malta-2018-08-27-features.osm.bz2``) with seed 0 by
:func:`planner.inputs.customers.generate_demo_customers`; buildings farther than 1 km from every
node of
``planner.roads.network.load_region("malta")`` (the main island's road network) are left out, which
drops Gozo and Comino: they reach the main island only by ferry. The output is deterministic: rerun
the script and ``git diff`` shows nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from planner.inputs.customers import generate_demo_customers, write_demo_customers

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"
N_CUSTOMERS = 2000
SEED = 0


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    DEMO.mkdir(parents=True, exist_ok=True)
    customers = generate_demo_customers("malta", N_CUSTOMERS, seed=SEED)
    write_demo_customers(customers, DEMO / "malta_customers.csv")
    counts = customers["segment"].value_counts().to_dict()
    logging.info("wrote %d customers: %s", len(customers), counts)


if __name__ == "__main__":
    main()
