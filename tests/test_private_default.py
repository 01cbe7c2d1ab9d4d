"""The app is private by default: `streamlit run app.py` listens on this machine only."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_streamlit_config_listens_on_localhost_only() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    # An empty or missing address makes Streamlit listen on every interface (0.0.0.0).
    assert config["server"].get("address") == "localhost"
