"""Case dossiers: a DOCX a lawyer edits in Word, built from an editable template.

The coalition edits the template, not code: ``bot/templates/dossier.<lang>.j2``
(or a copy in ``INTAKE_DOSSIER_TEMPLATE_DIR``, which wins) is Jinja2 producing
a small line markup, turned into Word paragraphs here:

    # Heading            ## Sub-heading         ### Minor heading
    - bullet point       ``    text`` (indented: monospace, for hashes and receipts)
    ---                  (page break)          anything else: a paragraph

Values from the case can never become markup: every line of every value is
marked as plain text before the template sees it. The document is built in
memory and returned as bytes; it is never written to disk. Pure: no Telegram,
no database. See docs/evidence.md.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from docx import Document
from docx.enum.text import WD_BREAK
from docx.shared import Pt
from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

DEFAULT_TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
# A value's lines start with this (a word joiner, invisible): the renderer reads
# such a line as plain text whatever follows, then drops the mark.
PLAIN: Final = "\u2060"
DOCX_MIME: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _plain(value: object) -> object:
    """Jinja2's ``finalize``: case text is text, never markup."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "\n".join(PLAIN + line for line in value.split("\n"))
    return value


def environment(custom_dir: Path | None = None) -> SandboxedEnvironment:
    folders = [DEFAULT_TEMPLATES] if custom_dir is None else [custom_dir, DEFAULT_TEMPLATES]
    return SandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(str(folder)) for folder in folders]),
        undefined=StrictUndefined,
        finalize=_plain,
        autoescape=False,  # the output is Word markup, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_markup(
    language: str, context: Mapping[str, Any], *, custom_dir: Path | None = None
) -> str:
    return environment(custom_dir).get_template(f"dossier.{language}.j2").render(**context)


def markup_to_docx(markup: str, *, title: str) -> bytes:
    document = Document()
    document.core_properties.title = title
    # No author, no computer name: the document names nobody it need not.
    document.core_properties.author = ""
    document.core_properties.last_modified_by = ""
    for raw in markup.splitlines():
        line = raw.rstrip()
        if line.startswith(PLAIN):
            document.add_paragraph(line.replace(PLAIN, ""))
        elif not line.strip():
            continue
        elif line.strip() == "---":
            document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        elif line.startswith("### "):
            document.add_heading(line[4:].replace(PLAIN, ""), level=3)
        elif line.startswith("## "):
            document.add_heading(line[3:].replace(PLAIN, ""), level=2)
        elif line.startswith("# "):
            document.add_heading(line[2:].replace(PLAIN, ""), level=1)
        elif line.startswith("- "):
            document.add_paragraph(line[2:].replace(PLAIN, ""), style="List Bullet")
        elif line.startswith("    "):
            run = document.add_paragraph().add_run(line[4:].replace(PLAIN, ""))
            run.font.name = "Courier New"
            run.font.size = Pt(8)
        else:
            document.add_paragraph(line.replace(PLAIN, ""))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def build_dossier(
    language: str,
    context: Mapping[str, Any],
    *,
    title: str,
    custom_dir: Path | None = None,
) -> bytes:
    """The DOCX bytes of a dossier in ``language`` (``tg`` or ``ru``)."""
    return markup_to_docx(render_markup(language, context, custom_dir=custom_dir), title=title)
