"""The README is a short user guide: its set-up commands up front, every environment variable
config.py reads in its table, and every docs/ page it or another page links to present."""

from __future__ import annotations

import re
from pathlib import Path

from vector_search import config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_short_with_the_two_commands_up_front() -> None:
    lines = README.splitlines()
    assert len(lines) <= 200
    head = "\n".join(lines[:40])
    assert "pip install -r requirements.txt && streamlit run app.py" in head and "python3 -m pytest" in head


def test_the_readme_lists_every_variable_config_reads() -> None:
    source = Path(config.__file__).read_text(encoding="utf-8")
    variables = set(re.findall(r'"((?:VECTOR_SEARCH|KERAS|OMP|TF)_[A-Z_]+)"', source))
    assert len(variables) >= 10
    table = {line.split("|")[1].strip() for line in README.splitlines() if line.startswith("| ")}
    assert sorted(variables - table) == []


def test_every_linked_page_exists() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not target.startswith("http") and not (page.parent / target).exists():
                missing.append(f"{page.name} -> {target}")
    assert missing == []
