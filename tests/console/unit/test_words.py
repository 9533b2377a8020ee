"""Every word a console page shows exists in zh-CN and en (SPEC §15): each message the templates
use has its zh-CN translation in the catalogue, the catalogue holds nothing no template uses, and
no template holds a word outside the catalogue."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from jinja2 import Environment

import settlewatch.console

CONSOLE = Path(settlewatch.console.__file__).parent
TEMPLATES = CONSOLE / "templates"
PO = CONSOLE / "locale" / "zh_CN" / "LC_MESSAGES" / "console.po"
# Not words to translate: each language's name in itself (the switch), the export formats.
NAMES = {"English", "中文", "CSV", "XLSX"}


def used_messages() -> set[str]:
    found = extract_from_dir(
        CONSOLE,
        [("templates/**.html", "jinja2"), ("**.py", "python")],  # python: an export's headers
        {"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    )
    return {message for _, _, message, _, _ in found}


def test_every_message_of_a_template_has_its_zh_cn_words_and_none_is_left_over() -> None:
    with PO.open("rb") as source:
        catalogue = read_po(source)
    translated = {m.id: m.string for m in catalogue if m.id}
    used = used_messages()
    assert len(used) > 30
    assert sorted(used - translated.keys()) == []
    assert sorted(translated.keys() - used) == []
    assert [m for m, words in translated.items() if not words] == []
    # A message's placeholders are kept by its translation.
    for message, words in translated.items():
        assert set(re.findall(r"%\(\w+\)s", message)) == set(re.findall(r"%\(\w+\)s", words))


def test_no_template_holds_a_word_outside_the_catalogue() -> None:
    """The text between tags and expressions, once markup is removed, has no letters."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    stray = []
    for path in sorted(TEMPLATES.glob("*.html")):
        # The template's text with each expression or statement as one mark, then no markup.
        text = "".join(v if kind == "data" else "\x00" for _, kind, v in env.lex(path.read_text()))
        text = re.sub(r"<[^>]*>|&\w+;", " ", text)
        words = [w for w in re.findall(r"[A-Za-z\u4e00-\u9fff]+", text) if w not in NAMES]
        stray += [(path.name, w) for w in words]
    assert stray == []
