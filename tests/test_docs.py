"""Docs that are generated from the config must stay true."""

from pathlib import Path

from golden_model.config import default_config
from experiments.report import register_table

ROOT = Path(__file__).resolve().parents[1]


def test_fixed_point_doc_table_matches_default_config():
    doc = (ROOT / "docs" / "fixed_point.md").read_text()
    assert register_table(default_config()) in doc, \
        "docs/fixed_point.md is stale: regenerate its table with experiments.report.register_table"


def test_readme_shows_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
