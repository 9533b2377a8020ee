"""``settlewatch import FILE [--format F]``: a settlement file posted to recon's API, as an
operator would from a shell, with a progress line and the import's summary.

It goes through the API (``POST /v1/settlement-files``), so an import from a shell and one from
the acquirer's backend are the same import: stored whole or rejected, idempotent by SHA-256.
The upload is streamed from disk. Exit 0 imported (or already imported), 1 rejected.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import httpx

from settlewatch.common.config import StackSettings
from settlewatch.common.errors import UsageError
from settlewatch.settlementfiles.amounts import exponent

__all__ = [
    "ImportFailed",
    "exit_code",
    "ingest_url",
    "recon_url",
    "post_file",
    "progress_stream",
    "render",
    "token_of",
]

CHUNK = 1024 * 1024
_KINDS = (
    ("statement", "statements"),
    ("entry", "entries"),
    ("line", "lines"),
    ("payout", "payouts"),
)
# Generous: the API answers once every record is parsed and stored (≈ a minute for 200 MB).
TIMEOUT = httpx.Timeout(30.0, read=900.0, write=120.0)


class ImportFailed(UsageError):
    """The file cannot be sent: missing, or recon unreachable, or the token refused."""


def ingest_url(settings: StackSettings) -> str:
    return (settings.ingest_url or f"http://{settings.host}:{settings.ingest_port}").rstrip("/")


def recon_url(settings: StackSettings) -> str:
    return (settings.recon_url or f"http://{settings.host}:{settings.recon_port}").rstrip("/")


def token_of(settings: StackSettings) -> str:
    """SETTLEWATCH_TOKEN, else an acquirer token of SETTLEWATCH_API_TOKENS, else the dev token a
    running `settlewatch up` keeps in its data folder."""
    if settings.token is not None:
        return settings.token.get_secret_value()
    for token in settings.api_tokens:
        if token.scope == "acquirer":
            return token.secret.get_secret_value()
    dev = settings.data_dir / "dev-token"
    if dev.exists():
        return dev.read_text().strip()
    raise ImportFailed("no token: set SETTLEWATCH_TOKEN to an acquirer token")


def _chunks(path: Path, size: int, progress: TextIO | None) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            sent += len(chunk)
            if progress is not None:
                percent = 100 * sent // max(size, 1)
                print(
                    f"\rsending {path.name}: {percent:3d}% ({sent / 2**20:.1f} of "
                    f"{size / 2**20:.1f} MiB)",
                    end="" if sent < size else " — parsing and storing…\n",
                    file=progress,
                    flush=True,
                )
            yield chunk


def post_file(
    path: Path, fmt: str, url: str, token: str, progress: TextIO | None
) -> tuple[int, dict[str, Any]]:
    """POST the file; the HTTP status and the JSON answer (a problem when refused)."""
    if not path.is_file():
        raise ImportFailed(f"no such file: {path}")
    size = path.stat().st_size
    try:
        response = httpx.post(
            f"{url}/v1/settlement-files",
            params={"format": fmt},
            content=_chunks(path, size, progress),
            headers={
                "authorization": f"Bearer {token}",
                "content-type": "application/octet-stream",
                "content-length": str(size),
            },
            timeout=TIMEOUT,
        )
    except httpx.TransportError as exc:
        raise ImportFailed(f"recon not reachable at {url}: {exc}") from None
    if response.status_code in (401, 403):
        raise ImportFailed(f"the token was refused ({response.status_code}): use an acquirer token")
    return response.status_code, response.json()


def _money(minor: int, currency: str) -> str:
    places = exponent(currency)
    return f"{minor / 10**places:,.{places}f}" if places else f"{minor:,}"


def render(status: int, body: dict[str, Any]) -> str:
    """The summary an operator reads after an import."""
    if status not in (200, 202):
        lines = [f"rejected: {body.get('detail', body.get('title'))}"]
        if "file_id" in body:
            lines[0] += f" (file {body['file_id']})"
        lines += [f"  {'/'.join(map(str, e['loc']))}: {e['msg']}" for e in body.get("errors", [])]
        return "\n".join(lines)
    head = "already imported" if status == 200 else body["status"]
    lines = [f"{head}: file {body['file_id']} ({body['format']}, sha256 {body['sha256'][:16]}…)"]
    if body["status"] == "rejected":
        lines += [f"  {'/'.join(map(str, e['loc']))}: {e['msg']}" for e in body["errors"]]
        return "\n".join(lines)
    counts = body.get("counts", {})
    lines.append(
        "  " + ", ".join(f"{plural} {counts[kind]}" for kind, plural in _KINDS if counts.get(kind))
    )
    if counts.get("flagged"):
        lines.append(f"  flagged (inconsistent, not matched): {counts['flagged']}")
    for currency, total in sorted(body.get("totals", {}).items()):
        lines.append(
            f"  {currency} credits {_money(total['credits'], currency)}"
            f"  debits {_money(total['debits'], currency)}"
        )
    return "\n".join(lines)


def exit_code(status: int, body: dict[str, Any]) -> int:
    return 0 if status in (200, 202) and body.get("status") != "rejected" else 1


def progress_stream() -> TextIO | None:
    return sys.stderr if sys.stderr.isatty() else None
