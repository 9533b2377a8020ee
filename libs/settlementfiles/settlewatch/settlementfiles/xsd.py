"""Warn-only validation of camt statements against their ISO 20022 schema (`schemas/`).

Real files often fail their schema (a missing ``BkTxCd``, a proprietary element) and are read
all the same; this says how a file differs, as a warning, never a rejection. Streaming: the
schema is checked as the file is parsed and each element is freed once read, so a 1 GB file
validates in flat memory. Only the first violation is reported (the parser stops there), by the
element's name (a streaming validation error carries no line number).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import IO

from lxml import etree

from settlewatch.settlementfiles.model import Issue

__all__ = ["SCHEMAS", "check"]

SCHEMAS = Path(__file__).parent / "schemas"
_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"


@cache
def _schema(message: str) -> etree.XMLSchema | None:
    path = SCHEMAS / f"{message}.xsd"
    return etree.XMLSchema(etree.parse(str(path))) if path.exists() else None


def _namespace(stream: IO[bytes]) -> str | None:
    for _, element in etree.iterparse(stream, events=("start",), resolve_entities=False):
        return etree.QName(element).namespace
    return None


def check(stream: IO[bytes]) -> list[Issue]:
    """How the camt file in `stream` differs from its schema (empty: it follows it). The
    stream is read from the start and left at the start."""
    stream.seek(0)
    try:
        namespace = _namespace(stream) or ""
        message = namespace.removeprefix(_PREFIX)
        schema = _schema(message) if namespace.startswith(_PREFIX) else None
        if schema is None:
            return [Issue(("Document",), f"no schema known for namespace {namespace!r}")]
        stream.seek(0)
        try:
            for _, element in etree.iterparse(
                stream, events=("end",), schema=schema, resolve_entities=False, huge_tree=True
            ):
                element.clear(keep_tail=True)  # validated as parsed: free what was read
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
        except etree.XMLSyntaxError as error:
            # A streaming validation error carries no line: the message names the element.
            return [Issue(("Document",), f"{message}: {re.sub(r'{[^}]*}', '', error.msg)}")]
        return []
    finally:
        stream.seek(0)
