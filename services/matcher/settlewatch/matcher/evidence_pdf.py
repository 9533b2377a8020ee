"""The evidence as a printable PDF (fpdf2), in the merchant's locale. Chinese needs a font with
its glyphs, embedded (subset) so the document reads the same on any phone: Noto Sans CJK SC from
the `fonts-noto-cjk` package by default (SETTLEWATCH_PDF_FONT)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from fontTools.ttLib import TTCollection
from fpdf import FPDF
from fpdf.fonts import FontFace

from settlewatch.common.catalogue import (
    ALERT_STATUSES,
    PAYMENT_KINDS,
    PAYMENT_STATUSES,
    PAYOUT_STATUSES,
    SETTLEMENT_OUTCOMES,
    say,
)
from settlewatch.common.findings import KINDS
from settlewatch.common.money import money
from settlewatch.matcher.evidence import Evidence

__all__ = ["render"]

_LABELS = {
    "zh-CN": {
        "title": "结算查询凭证",
        "id": "编号",
        "merchant": "商户",
        "account": "收款账户",
        "none": "未登记",
        "transaction": "交易信息",
        "txn_id": "交易号",
        "kind": "类型",
        "occurred_at": "交易时间",
        "terminal_id": "终端号",
        "rrn": "参考号 (RRN)",
        "stan": "流水号",
        "auth_code": "授权码",
        "bank": "结算银行 / 周期",
        "status": "状态",
        "due_at": "应到账时间",
        "amounts": "金额",
        "expected": "应收",
        "received": "实收",
        "gross": "交易金额",
        "fee": "手续费",
        "net": "净额",
        "difference": "差额",
        "settlements": "银行结算记录",
        "payouts": "打款",
        "timeline": "时间线",
        "alerts": "告警",
        "ask": "向银行询问",
        "generated": "生成时间",
        "time": "时间",
        "value_date": "入账日",
        "estimated": "（节假日安排未公布，按工作日估算）",
    },
    "en": {
        "title": "Settlement evidence",
        "id": "id",
        "merchant": "Merchant",
        "account": "Receiving account",
        "none": "not registered",
        "transaction": "Transaction",
        "txn_id": "Transaction id",
        "kind": "Type",
        "occurred_at": "Time",
        "terminal_id": "Terminal",
        "rrn": "RRN",
        "stan": "STAN",
        "auth_code": "Auth code",
        "bank": "Bank / cycle",
        "status": "Status",
        "due_at": "Due by",
        "amounts": "Amounts",
        "expected": "Expected",
        "received": "Received",
        "gross": "Gross",
        "fee": "Fee",
        "net": "Net",
        "difference": "Difference",
        "settlements": "Bank settlements",
        "payouts": "Payouts",
        "timeline": "Timeline",
        "alerts": "Alerts",
        "ask": "What to ask the bank",
        "generated": "Generated",
        "time": "Time",
        "value_date": "Value date",
        "estimated": " (holiday schedule not published: business days estimated)",
    },
}


@cache
def _face(path: Path) -> int:
    """The Simplified Chinese face of a font collection (0 for a single font)."""
    if path.suffix.lower() not in (".ttc", ".otc"):
        return 0
    names = [font["name"].getDebugName(4) or "" for font in TTCollection(path, lazy=True).fonts]
    return next((i for i, name in enumerate(names) if name.endswith(" SC")), 0)


def render(evidence: Evidence, font: Path) -> bytes:
    """The document; `font` must exist (the API checks it first)."""
    locale = evidence.locale
    labels = _LABELS[locale]
    tz = ZoneInfo(evidence.timezone)
    pdf = FPDF(format="A4")
    pdf.set_title(f"{labels['title']} {evidence.transaction.txn_id}")
    pdf.set_creator("settlewatch")
    pdf.add_font("cjk", fname=str(font), collection_font_number=_face(font))
    pdf.set_font("cjk", size=10)
    pdf.add_page()

    def when(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    def amount(minor: int | None) -> str:
        return (
            "—" if minor is None else money(minor, evidence.transaction.currency, evidence.locale)
        )

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font(size=12)
        pdf.cell(text=text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(size=9)

    def table(rows: list[list[str]], widths: tuple[int, ...] | None = None) -> None:
        """A grid; with `widths` a two-column list of labels and values, else headed."""
        style = FontFace(emphasis=None, fill_color=(235, 235, 235))
        with pdf.table(
            col_widths=widths,
            headings_style=style,
            first_row_as_headings=widths is None,
            line_height=5.5,
        ) as grid:
            for row in rows:
                cells = grid.row()
                for value in row:
                    cells.cell(value)

    pdf.set_font(size=16)
    pdf.cell(text=labels["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(size=9)
    pdf.cell(
        text=f"{labels['generated']}: {when(evidence.generated_at)}", new_x="LMARGIN", new_y="NEXT"
    )

    heading(labels["merchant"])
    account = evidence.receiving_account
    table(
        [
            [labels["merchant"], f"{evidence.merchant_name or ''} ({evidence.merchant_id})"],
            [
                labels["account"],
                f"{account.holder} · {account.bank_name} · {account.number}"
                if account
                else labels["none"],
            ],
        ],
        (35, 145),
    )
    t = evidence.transaction
    heading(labels["transaction"])
    due = when(evidence.due_at) + (
        labels["estimated"] if evidence.deadline_basis == "estimated" else ""
    )
    table(
        [
            [labels["txn_id"], t.txn_id],
            [labels["kind"], say(PAYMENT_KINDS, t.kind, locale)],
            [labels["occurred_at"], when(t.occurred_at)],
            [labels["terminal_id"], t.terminal_id or ""],
            [labels["rrn"], t.rrn or ""],
            [labels["stan"], t.stan or ""],
            [labels["auth_code"], t.auth_code or ""],
            [labels["bank"], f"{t.bank_code} / {t.settlement_cycle}"],
            [labels["status"], say(PAYMENT_STATUSES, evidence.status, locale)],
            [labels["due_at"], due],
        ],
        (35, 145),
    )
    heading(labels["amounts"])
    received = evidence.received
    table(
        [
            ["", labels["gross"], labels["fee"], labels["net"]],
            [
                labels["expected"],
                amount(evidence.expected.gross_minor),
                amount(evidence.expected.fee_minor),
                amount(evidence.expected.net_minor),
            ],
            [
                labels["received"],
                amount(received.gross_minor if received else None),
                amount(received.fee_minor if received else None),
                amount(received.net_minor if received else None),
            ],
            [labels["difference"], "", "", amount(evidence.difference_minor)],
        ]
    )
    if evidence.settlements:
        heading(labels["settlements"])
        table(
            [[labels["id"], labels["status"], labels["occurred_at"], labels["net"], ""]]
            + [
                [
                    s.settlement_id,
                    say(SETTLEMENT_OUTCOMES, s.status, locale),
                    when(s.occurred_at),
                    amount(s.net_minor),
                    s.failure_reason or s.matched_by or "",
                ]
                for s in evidence.settlements
            ]
        )
    if evidence.payouts:
        heading(labels["payouts"])
        table(
            [[labels["id"], labels["net"], labels["value_date"], labels["status"]]]
            + [
                [
                    p.payout_id,
                    amount(p.amount_minor),
                    p.value_date.isoformat() if p.value_date else "",
                    say(PAYOUT_STATUSES, p.status, locale),
                ]
                for p in evidence.payouts
            ]
        )
    heading(labels["timeline"])
    table([[when(e.at), e.event] for e in evidence.timeline], (40, 140))  # no heading row
    if evidence.alerts:
        heading(labels["alerts"])
        table(
            [[labels["alerts"], labels["status"], labels["time"]]]
            + [
                [
                    KINDS[a.type].title[locale] if a.type in KINDS else a.type,
                    say(ALERT_STATUSES, a.status, locale),
                    when(a.created_at),
                ]
                for a in evidence.alerts
            ]
        )
    heading(labels["ask"])
    for ask in evidence.ask_the_bank:
        # Left-aligned: justified, a line of Chinese with Latin runs (an RRN, an amount) opens
        # wide gaps at the runs' edges.
        pdf.multi_cell(w=0, text=f"• {ask}", align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
