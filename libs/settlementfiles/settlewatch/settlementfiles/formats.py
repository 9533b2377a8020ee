"""Which parser reads a file: by the format the user names, or found from the file's first bytes
(``format=auto``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import IO

from settlewatch.settlementfiles import adyen, camt, csvmap, mt940, wechatpay
from settlewatch.settlementfiles.model import FileRecord, FileRejected, Issue

__all__ = ["FORMATS", "HELP", "detect", "read"]

Parser = Callable[[IO[bytes]], Iterator[FileRecord | Issue]]
# Every named format and its parser; a CSV 对账单 is ``csv:<mapping name>`` besides these.
FORMATS: dict[str, Parser] = {
    **{fmt: partial(camt.parse, expected=fmt) for fmt in camt.FORMATS},
    "mt940": mt940.parse,
    "adyen": adyen.parse,
    "wechatpay": wechatpay.parse,
}
HELP = f"auto (found from the file), {', '.join(FORMATS)} or csv:<mapping name>"
_HEAD_BYTES = 64 * 1024
_XML_MESSAGE = re.compile(rb"<(?:\w+:)?(BkToCstmrStmt|BkToCstmrDbtCdtNtfctn|BkToCstmrAcctRpt)\b")
_MT940 = re.compile(rb"^:20:", re.MULTILINE)


def detect(stream: IO[bytes]) -> str:
    """The format of a seekable file, from its first 64 KiB (the stream is rewound)."""
    head = stream.read(_HEAD_BYTES)
    stream.seek(0)
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        found = _XML_MESSAGE.search(head)
        if found is None:
            raise FileRejected([Issue(("Document",), "XML, but not a camt.052/053/054 message")])
        return {
            b"BkToCstmrStmt": "camt.053",
            b"BkToCstmrDbtCdtNtfctn": "camt.054",
            b"BkToCstmrAcctRpt": "camt.052",
        }[found.group(1)]
    if _MT940.search(head):
        return "mt940"
    first_line = text.split(b"\n", 1)[0].decode("utf-8", "replace")
    if all(name in first_line for name in adyen.HEADER):
        return "adyen"
    if all(name in first_line for name in wechatpay.TRADE) or all(
        name in first_line for name in wechatpay.FUND_FLOW
    ):
        return "wechatpay"
    raise FileRejected(
        [
            Issue(
                ("line", 1),
                "format not recognised (camt.05x, MT940, Adyen, WeChat Pay); "
                "for a CSV 对账单 name its mapping: format=csv:<name>",
            )
        ]
    )


def read(
    stream: IO[bytes], fmt: str, mapping: csvmap.FileMapping | None = None
) -> Iterator[FileRecord | Issue]:
    """The records of a file in format `fmt` (``csv:<name>`` needs its `mapping`), and an
    :class:`Issue` for each warning on the file."""
    if fmt in FORMATS:
        return FORMATS[fmt](stream)
    if fmt.startswith("csv:") and mapping is not None:
        return csvmap.parse(stream, mapping)
    raise ValueError(f"unknown format {fmt!r}")
