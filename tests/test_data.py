"""The bundled data is what data/README.md says it is."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
README = (DATA / "README.md").read_text(encoding="utf-8")
ROWS = re.findall(r"\| `(osm/[^`]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|", README)


def test_readme_lists_every_bundled_file() -> None:
    listed = {name for name, _, _ in ROWS}
    present = {f"osm/{p.name}" for p in (DATA / "osm").iterdir()}
    assert listed == present


@pytest.mark.parametrize(("name", "size", "sha256"), ROWS)
def test_bundled_file_matches_readme(name: str, size: str, sha256: str) -> None:
    blob = (DATA / name).read_bytes()
    assert len(blob) == int(size.replace(",", ""))
    assert hashlib.sha256(blob).hexdigest() == sha256
