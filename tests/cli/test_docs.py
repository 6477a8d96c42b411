"""The README stands alone in a clone: the cause table lives in the project's own docs."""

from __future__ import annotations

import re
from pathlib import Path

from doorfix.playbooks.cause_table import CAUSES
from doorfix.playbooks.types import Cause

ROOT = Path(__file__).resolve().parents[2]
CAUSES_DOC = ROOT / "docs" / "causes.md"


def _table_rows() -> dict[str, str]:
    """docs/causes.md's cause table: the code of each row -> the row."""
    rows: dict[str, str] = {}
    for line in CAUSES_DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `([a-z_.]+)` \|", line)
        if match:
            rows.setdefault(match.group(1), line)
    return rows


def test_every_cause_code_has_a_row_in_docs_causes() -> None:
    rows = _table_rows()
    missing = [cause.value for cause in CAUSES if cause.value not in rows]
    assert not missing, f"docs/causes.md lacks a row for {missing}"
    assert set(Cause) <= set(CAUSES)


def test_each_row_names_its_runbook_step_meaning_remedy_and_who() -> None:
    rows = _table_rows()
    for cause, spec in CAUSES.items():
        cells = [c.strip() for c in rows[cause.value].strip("|").split("|")]
        assert len(cells) == 5, rows[cause.value]
        assert all(cells), f"{cause.value}: an empty cell in {cells}"
        if spec.remedy is not None:
            assert f"`{spec.remedy.value}`" in cells[3], f"{cause.value}: remedy not named"


def test_readme_links_the_causes_and_points_at_nothing_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/causes.md)" in readme
    assert "../shared" not in readme
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith(("http://", "https://", "mailto:")):
            assert (ROOT / target).exists(), f"README links {target}, which is not in the clone"
