"""The dossier renderer (bot/dossier.py): templates in both languages, values never markup."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from docx import Document

from bot.dossier import build_dossier


def _context(answer: str) -> dict[str, Any]:
    item = {"id": "account", "question": "Q?", "answer": answer}
    return {
        "case": {
            "reference": "K7QD-M2PF",
            "status": "new",
            "received": "07.12.2026 03:00 UTC",
            "urgent": True,
            "lawyer": "—",
        },
        "generated": "07.12.2026 04:00 UTC",
        "event_date": "",
        "sections": [{"id": "acts", "title": "What happened", "items": [item]}],
        "places": [{"id": "agency", "question": "Agency", "answer": "МВД"}],
        "timeline": [{"date": "07.12.2026 03:00 UTC", "what": "received", "detail": ""}],
        "files": [],
        "history": [],
        "notes": [],
        "complaint": True,
    }


def _paragraphs(data: bytes) -> list[tuple[str, str]]:
    return [
        (p.style.name if p.style else "", p.text) for p in Document(io.BytesIO(data)).paragraphs
    ]


@pytest.mark.parametrize(("language", "heading"), [("ru", "Досье дела"), ("tg", "Ҳуҷҷатномаи")])
def test_both_languages_render_with_protocol_headings(language: str, heading: str) -> None:
    paragraphs = _paragraphs(build_dossier(language, _context("Били."), title="K7QD-M2PF"))
    headings = [text for style, text in paragraphs if style.startswith("Heading")]
    assert any(text.startswith(heading) for text in headings)
    assert any(text.startswith("5. ") for text in headings)  # Istanbul Protocol section
    assert ("Normal", "Били.") in paragraphs
    assert any("143¹" in text for _style, text in paragraphs)


def test_case_text_never_becomes_markup() -> None:
    hostile = "# Not a heading\n- not a bullet\n---\n    not code"
    paragraphs = _paragraphs(build_dossier("ru", _context(hostile), title="x"))
    for line in hostile.split("\n"):
        assert ("Normal", line) in paragraphs
    assert not any(text == "Not a heading" for _style, text in paragraphs)


def test_a_custom_template_folder_wins(tmp_path: Path) -> None:
    (tmp_path / "dossier.ru.j2").write_text("# Своё досье {{ case.reference }}\n", "utf-8")
    paragraphs = _paragraphs(build_dossier("ru", _context("x"), title="x", custom_dir=tmp_path))
    assert paragraphs == [("Heading 1", "Своё досье K7QD-M2PF")]
    # The other language still comes from the bundled templates.
    tajik = _paragraphs(build_dossier("tg", _context("x"), title="x", custom_dir=tmp_path))
    assert any(text.startswith("Ҳуҷҷатномаи") for _style, text in tajik)
