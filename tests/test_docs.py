"""The project's docs stand alone: every relative link in README.md and docs/ names a file in
the repository, and no doc points outside it (to a sibling folder or a file the clone lacks)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "web" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, https:, mailto:
        path = (doc.parent / target).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_sends_the_reader_outside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text
    # A bare mention of a design or contract page that the clone does not hold.
    for name in re.findall(r"(?<![/\w])([A-Z]+\.md)\b", text):
        assert (ROOT / name).exists() or (ROOT / "docs" / name).exists() or (
            doc.parent / name
        ).exists(), f"{doc.name} names {name}, which is not in the repository"
