"""Settlement file imports: records/s through POST /v1/settlement-files vs a bare parse of the
same file in the same run, and the peak memory of both.

Two generated files: an Adyen settlement detail report of ``--lines`` lines (1 M by default,
≈ 200 MB) and a camt.053 of ``--entries`` entries (100 k, each with a detail and remittance
text, ≈ 150 MB). The import leg runs `settlewatch serve recon` as its own process and times the
POST until its answer (every record parsed and stored in PostgreSQL); the reference leg parses
the file in a fresh process, records discarded. Peak RSS is the kernel's high-water mark
(VmHWM) of each process — the service's and its parsing process's — flat memory means it does
not grow with the file.
First, a hostile camt.053 (``--hostile-mb``, 256 by default: a group header of empty elements)
and the peak RSS it costs.
Last line: ``RESULT files_ratio=<the lower of the two import rates ÷ its bare parse rate>``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil

from bench.parts import parts, service_env
from tests.support.service import served

TOKEN = "bench-token-0123456789"
ADYEN_HEADER = (
    "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,"
    "Creation Date,TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),"
    "Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),Net Credit (NC),"
    "Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,"
    "Batch Number,Reserved4,Reserved5,Reserved6,Reserved7,Reserved8,Reserved9,Reserved10,"
    "Modification Merchant Reference,Booking Date,Booking Date TimeZone\n"
)


def adyen_report(path: Path, lines: int) -> int:
    """A report of `lines` settled sales in one batch and its payout; its size in bytes."""
    net_total = 0
    with path.open("w") as out:
        out.write(ADYEN_HEADER)
        for i in range(lines):
            gross = 1000 + (i * 7919) % 500_000
            fee = gross * 6 // 1000
            net_total += gross - fee
            out.write(
                f"Acme,ACME_CN,{1800000000000000 + i},T{i},visa,2026-11-25 10:{i % 60:02d}:00,CET,"
                f"Settled,{7400000000000000 + i},EUR,,{gross / 100:.2f},1,EUR,,"
                f"{(gross - fee) / 100:.2f},,{fee / 100:.2f},,,visastandardcredit,500,,,,,,,,"
                f"<auto>,2026-11-26 23:50:00,CET\n"
            )
        out.write(
            f'Acme,ACME_CN,,,,2026-11-27 00:46:38,CET,MerchantPayout,"TX1 batch 500",,,,,EUR,'
            f"{net_total / 100:.2f},,,,,,,500,,,,,,,,,2026-11-27 00:46:38,CET\n"
        )
    return path.stat().st_size


def camt053(path: Path, entries: int) -> int:
    """A statement of `entries` booked credits, each with one detail; its size in bytes."""
    total = 0
    with path.open("w") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
            "<GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2026-11-26T18:00:00+08:00</CreDtTm></GrpHdr>"
            "<Stmt><Id>S1</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN></Id></Acct>\n"
        )
        for i in range(entries):
            amount = 1000 + (i * 7919) % 500_000
            total += amount
            out.write(
                f'<Ntry><NtryRef>N{i}</NtryRef><Amt Ccy="CHF">{amount / 100:.2f}</Amt>'
                "<CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
                "<BookgDt><Dt>2026-11-26</Dt></BookgDt><ValDt><Dt>2026-11-26</Dt></ValDt>"
                f"<AcctSvcrRef>ASR{i}</AcctSvcrRef><NtryDtls><TxDtls><Refs>"
                f"<EndToEndId>E2E-{i}</EndToEndId><AcctSvcrRef>TX{i}</AcctSvcrRef></Refs>"
                f'<Amt Ccy="CHF">{amount / 100:.2f}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
                "<RltdPties><Dbtr><Nm>Acme Clearing AG</Nm></Dbtr></RltdPties>"
                f"<RmtInf><Ustrd>Payout batch {i // 1000} merchant M{i % 97}</Ustrd></RmtInf>"
                "</TxDtls></NtryDtls></Ntry>\n"
            )
        out.write("</Stmt></BkToCstmrStmt></Document>\n")
    return path.stat().st_size


def hostile_camt053(path: Path, megabytes: int) -> int:
    """A camt.053 whose group header is `megabytes` MiB of empty elements (kept whole, it took
    ≈ 8 GB), then one statement of one entry; its size in bytes."""
    filler = "<X/>" * (1 << 18)  # 1 MiB
    with path.open("w") as out:
        out.write(
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
            "<GrpHdr><MsgId>HOSTILE</MsgId>"
        )
        for _ in range(megabytes):
            out.write(filler)
        out.write(
            "</GrpHdr><Stmt><Id>S1</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN></Id></Acct>"
            '<Ntry><Amt Ccy="CHF">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
            "</Ntry></Stmt></BkToCstmrStmt></Document>\n"
        )
    return path.stat().st_size


BARE_PARSE = """
import sys, time
from settlewatch.settlementfiles.formats import read
started = time.perf_counter()
with open(sys.argv[1], "rb") as stream:
    n = sum(1 for _ in read(stream, sys.argv[2]))
print(n, time.perf_counter() - started)
"""


def bare_parse(path: Path, fmt: str) -> tuple[int, float, float]:
    """Records, seconds and peak RSS (MB) of parsing the file in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", BARE_PARSE, str(path), fmt],
        capture_output=True,
        text=True,
        check=True,
    )
    records, seconds = done.stdout.split()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return int(records), float(seconds), peak


def peak_rss_mb(pid: int) -> float:
    """The kernel's high-water mark of the process's resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_peak_mb(pid: int) -> float:
    """The peak RSS of the service's parsing process (its child running `spawn_main`)."""
    for child in psutil.Process(pid).children():
        if "spawn_main" in " ".join(child.cmdline()):
            return peak_rss_mb(child.pid)
    return float("nan")


def listening_pid(port: int) -> int:
    """The process listening on `port` (the recon service `served` started)."""
    for conn in psutil.net_connections("tcp"):
        if conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return conn.pid
    raise LookupError(f"nothing listens on {port}")


async def import_leg(url: str, path: Path) -> tuple[dict[str, object], float]:
    async def chunks() -> object:
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                yield chunk

    headers = {"authorization": f"Bearer {TOKEN}", "content-length": str(path.stat().st_size)}
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=1800)) as client:
        started = time.perf_counter()
        answer = await client.post(
            f"{url}/v1/settlement-files",
            content=chunks(),
            headers=headers,  # type: ignore[arg-type]
        )
        seconds = time.perf_counter() - started
    assert answer.status_code == 202, answer.text
    return answer.json(), seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--hostile-mb", type=int, default=256, help="0: no hostile file")
    args = parser.parse_args()
    async with parts(f"bench{uuid.uuid4().hex[:6]}", partitions=2) as p:
        files = {
            "adyen": (p.workdir / "report.csv", adyen_report, args.lines),
            "camt.053": (p.workdir / "statement.xml", camt053, args.entries),
        }
        env = service_env(
            p,
            SETTLEWATCH_API_TOKENS=f"{TOKEN}=acquirer",
            SETTLEWATCH_PARSE_TIMEOUT="PT30M",  # the hostile file is read to its end
            SETTLEWATCH_MAX_FILE_BYTES=str(max(256, args.hostile_mb + 1) << 20),
        )
        ratios = []
        with served("recon", env, p.workdir / "recon.log") as url:
            pid = listening_pid(int(url.rsplit(":", 1)[1]))
            if args.hostile_mb:  # first: the parsing process's high-water mark is its own
                hostile = p.workdir / "hostile.xml"
                size = hostile_camt053(hostile, args.hostile_mb)
                summary, seconds = await import_leg(url, hostile)
                assert summary["status"] == "imported", summary
                print(
                    f"hostile camt.053 of {size / 2**20:.0f} MB (empty elements): imported in "
                    f"{seconds:.0f} s; parsing process peak {worker_peak_mb(pid):.0f} MB, "
                    f"recon peak {peak_rss_mb(pid):.0f} MB"
                )
                hostile.unlink()
            print(
                f"{'file':<9} {'MB':>6} {'records':>9} {'parse/s':>9} {'import/s':>9} "
                f"{'ratio':>6} {'parse peak':>11} {'recon peak':>12} {'worker peak':>12}"
            )
            for fmt, (path, make, count) in files.items():
                size = make(path, count)
                records, parse_s, parse_peak = bare_parse(path, fmt)
                summary, import_s = await import_leg(url, path)
                counts = summary["counts"]
                assert (
                    isinstance(counts, dict) and sum(counts.values()) - counts["flagged"] == records
                )
                ratio = parse_s / import_s
                ratios.append(ratio)
                print(
                    f"{fmt:<9} {size / 2**20:>6.0f} {records:>9,} {records / parse_s:>9,.0f} "
                    f"{records / import_s:>9,.0f} {ratio:>6.2f} {parse_peak:>8.0f} MB "
                    f"{peak_rss_mb(pid):>9.0f} MB {worker_peak_mb(pid):>9.0f} MB"
                )
                path.unlink()
    print(f"RESULT files_ratio={min(ratios):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
