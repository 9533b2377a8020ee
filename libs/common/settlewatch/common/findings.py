"""Every finding type settlewatch raises (SPEC §6, §9, §12, §13): who raises it, who it is for,
how it ends, and what it says in each language.

Adding a finding type is its entry here, its producer, and their tests:
`tests/project/test_findings.py` fails when any code names a type that is not here, or an entry
lacks a template in either language or names evidence its template cannot show.

Templates are `str.format` strings over the facts `settlewatch.alerts.core.summaries` derives from
the evidence ({amount} is `amount_minor` in `currency`, formatted for the locale; {due} is
`due_at` in the merchant's zone…); an on-call template reads the evidence's own values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from settlewatch.common.money import Locale

__all__ = ["KINDS", "Audience", "FindingType", "Kind", "Severity", "kind"]

FindingType = Literal[
    "settlement.overdue",
    "settlement.settled_late",
    "settlement.failed",
    "settlement.recovered",
    "settlement.amount_mismatch",
    "settlement.unknown_transaction",
    "settlement.expired",
    "settlement.paid_after_void",
    "settlement.batch_total_mismatch",
    "settlement.duplicate_line",
    "settlement.ambiguous_line",
    "transaction.duplicate_suspected",
    "transaction.conflict",
    "refund.exceeds_sale",
    "fee.unexpected_deduction",
    "payout.missing",
    "payout.short",
    "payout.unexpected_credit",
    "payout.unexpected_debit",
    "terminal.region_jump",
    "terminal.books_mismatch",
    "bank.maintenance_scheduled",
    "bank.incident",
    "pipeline.stalled",
    "calendar.missing",
]
# merchant: its webhook and alerts; desk: an item on the reconciliation queue (SPEC §9);
# oncall: Alertmanager, read by SREs.
Audience = Literal["merchant", "desk", "oncall"]
Severity = Literal["info", "warning", "critical"]
Words = Mapping[Locale, str]


@dataclass(frozen=True)
class Kind:
    type: FindingType
    producer: str  # the service (and module) that raises it
    audience: frozenset[Audience]
    severity: Severity
    resolves: str  # what resolves it, as an alert's resolution note says when nobody said more
    title: Words  # the type's name for people (alert lists, the evidence PDF)
    template: Words
    evidence: frozenset[str]  # the evidence keys its template shows
    follow_up: bool = False  # news with nothing left to do: the alert is created resolved
    bank_dependent: bool = False  # its cause may lie with the bank: it carries probable_cause
    reminded: bool = False  # re-sent in the merchant's digest while open (SPEC §12)
    alertname: str | None = None  # on-call: its name in Alertmanager


_MERCHANT: frozenset[Audience] = frozenset({"merchant"})
_DESK: frozenset[Audience] = frozenset({"merchant", "desk"})
_ONCALL: frozenset[Audience] = frozenset({"oncall"})
_PAYMENT = frozenset({"txn_id", "amount_minor", "currency", "occurred_at"})
_LINE = frozenset({"file_id", "loc"})
_CREDIT = frozenset({"account", "value_date", "amount_minor", "currency", "credit_id"})
_MATCHER = "matcher (core/matcher.py)"
_FILES = "ingest (files/parsing.py, files/matching.py)"
_PAYOUTS = "ingest (files/reconciling.py, files/desk.py)"
_DESK_RESOLVES = "a person matched or wrote it off on the desk"

_ALL = (
    Kind(
        type="settlement.overdue",
        producer=f"{_MATCHER}; timer_sql.py",
        audience=_MERCHANT,
        severity="warning",
        resolves="the payment was settled or cancelled",
        title={"zh-CN": "逾期未到账", "en": "overdue"},
        template={
            "zh-CN": "交易 {txn}（{amount}，{occurred}）未按 {cycle} 到账，"
            "应于 {due} 前到账；可能原因：{cause}。",
            "en": "Transaction {txn} ({amount}, {occurred}) was not settled {cycle}; "
            "it was due by {due}. Probable cause: {cause}.",
        },
        evidence=_PAYMENT | {"due_at", "settlement_cycle"},
        bank_dependent=True,
        reminded=True,
    ),
    Kind(
        type="settlement.settled_late",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="info",
        resolves="a follow-up: nothing left to do",
        title={"zh-CN": "逾期后到账", "en": "settled late"},
        template={
            "zh-CN": "交易 {txn}（{amount}，{occurred}）已到账（结算单 {sid}），"
            "晚于应到账时间 {due}。",
            "en": "Transaction {txn} ({amount}, {occurred}) has been settled "
            "(settlement {sid}), after its deadline of {due}.",
        },
        evidence=_PAYMENT | {"settlement_id", "due_at"},
        follow_up=True,
        bank_dependent=True,
    ),
    Kind(
        type="settlement.failed",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="critical",
        resolves="a later settlement of the payment succeeded",
        title={"zh-CN": "打款失败", "en": "payout failed"},
        template={
            "zh-CN": "交易 {txn}（{amount}，{occurred}）打款失败（结算单 {sid}：{reason}）；"
            "可能原因：{cause}。",
            "en": "The payout of transaction {txn} ({amount}, {occurred}) failed "
            "(settlement {sid}: {reason}). Probable cause: {cause}.",
        },
        evidence=_PAYMENT | {"settlement_id", "failure_reason"},
        bank_dependent=True,
        reminded=True,
    ),
    Kind(
        type="settlement.recovered",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="info",
        resolves="a follow-up: nothing left to do",
        title={"zh-CN": "失败后已到账", "en": "recovered"},
        template={
            "zh-CN": "交易 {txn}（{amount}，{occurred}）此前打款失败，现已到账（结算单 {sid}）。",
            "en": "Transaction {txn} ({amount}, {occurred}), whose payout had failed, "
            "has now been settled (settlement {sid}).",
        },
        evidence=_PAYMENT | {"settlement_id"},
        follow_up=True,
    ),
    Kind(
        type="settlement.amount_mismatch",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="warning",
        resolves="the matcher resolved it",
        title={"zh-CN": "到账金额不符", "en": "amount mismatch"},
        template={
            "zh-CN": "交易 {txn}（{amount}，{occurred}）到账金额不符："
            "应到账 {expected_net}，实际到账 {settled_net}（结算单 {sid}）{fees}。",
            "en": "Transaction {txn} ({amount}, {occurred}) was settled with the wrong amount: "
            "expected net {expected_net}, received {settled_net} (settlement {sid}){fees}.",
        },
        evidence=_PAYMENT | {"settlement_id", "expected_net_minor", "settled_net_minor"},
    ),
    Kind(
        type="settlement.unknown_transaction",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="warning",
        resolves="the transaction arrived",
        title={"zh-CN": "结算单对应的交易未知", "en": "unknown transaction"},
        template={
            "zh-CN": "结算单 {sid} 中的交易 {txn} 在 15 分钟后仍未收到，无法核对。",
            "en": "Settlement {sid} pays transaction {txn}, which is still unknown 15 minutes "
            "later and cannot be checked.",
        },
        evidence=frozenset({"settlement_id", "txn_id"}),
    ),
    Kind(
        type="settlement.expired",
        producer=f"{_MATCHER}; timer_sql.py",
        audience=_MERCHANT,
        severity="critical",
        resolves="the matcher resolved it",
        title={"zh-CN": "逾期 30 天未到账", "en": "expired"},
        template={
            "zh-CN": "交易 {txn}（{amount}，{occurred}）应于 {due} 前到账，30 天后仍未到账，"
            "已停止跟踪；可能原因：{cause}。",
            "en": "Transaction {txn} ({amount}, {occurred}), due by {due}, is still not "
            "settled 30 days later and is no longer watched. Probable cause: {cause}.",
        },
        evidence=_PAYMENT | {"due_at"},
        bank_dependent=True,
    ),
    Kind(
        type="settlement.paid_after_void",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="warning",
        resolves="the matcher resolved it",
        title={"zh-CN": "撤销后仍付款", "en": "paid after void"},
        template={
            "zh-CN": "交易 {txn}（{amount}，{occurred}）已撤销，银行仍然付款了"
            "（结算单 {sid}，{settled_net}）。",
            "en": "Transaction {txn} ({amount}, {occurred}) was cancelled, yet the bank paid "
            "it (settlement {sid}, {settled_net}).",
        },
        evidence=_PAYMENT | {"settlement_id", "settled_net_minor"},
    ),
    Kind(
        type="settlement.batch_total_mismatch",
        producer=_FILES,
        audience=_DESK,
        severity="warning",
        resolves=_DESK_RESOLVES,
        title={"zh-CN": "批次汇总不符", "en": "batch total mismatch"},
        template={
            "zh-CN": "文件 {file}（{where}）的批次汇总与明细不符：应为 {expected}，实为 {found}；"
            "该批次未予核对。",
            "en": "In file {file} ({where}) a batch header disagrees with its lines: "
            "expected {expected}, found {found}; the batch was not matched.",
        },
        evidence=_LINE | {"problems"},
    ),
    Kind(
        type="settlement.duplicate_line",
        producer=_FILES,
        audience=_DESK,
        severity="warning",
        resolves=_DESK_RESOLVES,
        title={"zh-CN": "重复明细", "en": "duplicate line"},
        template={
            "zh-CN": "文件 {file}（{where}）中同一笔明细（{found}）出现两次且内容不同，未予核对。",
            "en": "File {file} ({where}) holds the same line ({found}) twice with different "
            "content; it was not matched.",
        },
        evidence=_LINE | {"problems"},
    ),
    Kind(
        type="settlement.ambiguous_line",
        producer=_FILES,
        audience=_DESK,
        severity="warning",
        resolves=_DESK_RESOLVES,
        title={"zh-CN": "结算明细对应多笔交易", "en": "ambiguous line"},
        template={
            "zh-CN": "文件 {file}（{where}）中的一笔结算（{amount}）可对应多笔交易（{pair}），"
            "需人工确认。",
            "en": "A settlement line of file {file} ({where}, {amount}) fits several payments "
            "({pair}); it needs a person to choose.",
        },
        evidence=_LINE | {"amount_minor", "currency", "txn_ids"},
    ),
    Kind(
        type="transaction.duplicate_suspected",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="warning",
        resolves="the matcher resolved it",
        title={"zh-CN": "疑似重复扣款", "en": "suspected duplicate charge"},
        template={
            "zh-CN": "疑似重复扣款：交易 {pair}（同一张卡，{amount}，{occurred}）。",
            "en": "Suspected duplicate charge: transactions {pair} (same card, {amount}, "
            "{occurred}).",
        },
        evidence=frozenset({"txn_ids", "amount_minor", "currency", "occurred_at"}),
    ),
    Kind(
        type="transaction.conflict",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="warning",
        resolves="the matcher resolved it",
        title={"zh-CN": "交易重复上送且内容不同", "en": "conflicting resend"},
        template={
            "zh-CN": "交易 {txn} 被再次上送但内容不同，以首次上送的内容为准。",
            "en": "Transaction {txn} was sent again with different content; the first "
            "version is kept.",
        },
        evidence=frozenset({"txn_id"}),
    ),
    Kind(
        type="refund.exceeds_sale",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="warning",
        resolves="the matcher resolved it",
        title={"zh-CN": "退款超过原交易", "en": "refunds exceed the sale"},
        template={
            "zh-CN": "交易 {txn}（{amount}，{occurred}）的退款合计 {refunded}，超过了原交易金额"
            "（退款 {refunds}）。",
            "en": "The refunds of transaction {txn} ({amount}, {occurred}) add up to "
            "{refunded}, more than the sale (refunds {refunds}).",
        },
        evidence=_PAYMENT | {"refunded_minor", "refunds"},
    ),
    Kind(
        type="fee.unexpected_deduction",
        producer=_FILES,
        audience=_DESK,
        severity="warning",
        resolves=_DESK_RESOLVES,
        title={"zh-CN": "未通知的扣款", "en": "unexpected deduction"},
        template={
            "zh-CN": "文件 {file}（{where}）从结算款中扣除了 {amount}（{line_kind}），"
            "没有事先通知的扣费或拒付与之对应。",
            "en": "File {file} ({where}) deducts {amount} ({line_kind}) from the payout, and no "
            "announced fee debit or chargeback explains it.",
        },
        evidence=_LINE | {"amount_minor", "currency", "line_kind"},
    ),
    Kind(
        type="payout.missing",
        producer=_PAYOUTS,
        audience=_DESK,
        severity="critical",
        resolves=f"the credit arrived, or {_DESK_RESOLVES}",
        title={"zh-CN": "打款未到账", "en": "missing payout"},
        template={
            "zh-CN": "结算报告中的付款批次 {payout}（{amount}，{count} 笔）应于 {value_date} "
            "到账，宽限期已过，银行流水中仍未见这笔入账（未到账）。",
            "en": "Payout {payout} ({amount}, {count} payments) was due on the account on "
            "{value_date}; the grace period is over and no such credit is on the bank statement.",
        },
        evidence=frozenset({"reference", "amount_minor", "currency", "count", "value_date"}),
    ),
    Kind(
        type="payout.short",
        producer=_PAYOUTS,
        audience=_DESK,
        severity="warning",
        resolves=_DESK_RESOLVES,
        title={"zh-CN": "到账金额不足", "en": "short payout"},
        template={
            "zh-CN": "付款批次 {payout} 应到账 {amount}，银行流水实际入账 {credited}"
            "（{value_date}，流水 {entry}），差额 {difference}。",
            "en": "Payout {payout} should have credited {amount}; the statement shows "
            "{credited} ({value_date}, entry {entry}), a difference of {difference}.",
        },
        evidence=frozenset(
            {
                "reference",
                "amount_minor",
                "currency",
                "credited_minor",
                "difference_minor",
                "value_date",
                "credit",
            }
        ),
    ),
    Kind(
        type="payout.unexpected_credit",
        producer=_PAYOUTS,
        audience=_DESK,
        severity="info",
        resolves=_DESK_RESOLVES,
        title={"zh-CN": "无来源的入账", "en": "unexpected credit"},
        template={
            "zh-CN": "账户 {account} 于 {value_date} 收到一笔 {amount} 的入账（流水 {entry}），"
            "没有结算报告与之对应。",
            "en": "Account {account} was credited {amount} on {value_date} (entry {entry}), "
            "and no settlement report explains it.",
        },
        evidence=_CREDIT,
    ),
    Kind(
        type="payout.unexpected_debit",
        producer=_PAYOUTS,
        audience=_DESK,
        severity="warning",
        resolves=_DESK_RESOLVES,
        title={"zh-CN": "无来源的扣款", "en": "unexpected debit"},
        template={
            "zh-CN": "账户 {account} 于 {value_date} 被扣款 {amount}（流水 {entry}），"
            "没有结算报告与之对应。",
            "en": "Account {account} was debited {amount} on {value_date} (entry {entry}), "
            "and no settlement report explains it.",
        },
        evidence=_CREDIT,
    ),
    Kind(
        type="terminal.region_jump",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="warning",
        resolves="the matcher resolved it",
        title={"zh-CN": "终端跳码", "en": "terminal region jump"},
        template={
            "zh-CN": "终端 {terminal} 的交易出现在不同地区（{regions}，{jump_times}），"
            "疑似跳码或终端被移机，请核实终端所在位置。",
            "en": "Terminal {terminal} was used in different regions ({regions}, "
            "{jump_times}): it may have been moved or cloned (跳码); check where it is.",
        },
        evidence=frozenset({"terminal_id", "regions", "transactions"}),
    ),
    Kind(
        type="terminal.books_mismatch",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="warning",
        resolves="the matcher resolved it",
        title={"zh-CN": "终端迁移后账务不一致", "en": "books mismatch after migration"},
        template={
            "zh-CN": "终端迁移后账务不一致：{day} 终端 {new_terminal}（替换 {old_terminal}）"
            "的交易被银行记在终端 {booked} 名下；请核对当日分终端账目。",
            "en": "Books disagree after a terminal migration: on {day} the bank booked "
            "payments of terminal {new_terminal} (which replaced {old_terminal}) under "
            "terminal {booked}; check that day's books per terminal.",
        },
        evidence=frozenset(
            {"replaced_terminal_id", "new_terminal_id", "booked_under", "business_date"}
        ),
    ),
    Kind(
        type="bank.maintenance_scheduled",
        producer=_MATCHER,
        audience=_MERCHANT,
        severity="info",
        resolves="a follow-up: nothing left to do",
        title={"zh-CN": "银行系统维护通知", "en": "bank maintenance notice"},
        template={
            "zh-CN": "{bank} 将于 {starts} 至 {ends} 进行系统维护（{window_reason}）；"
            "您有 {moved_count} 笔交易的应到账时间因此顺延。",
            "en": "{bank} announced maintenance from {starts} to {ends} ({window_reason}); "
            "the deadlines of {moved_count} of your payments move accordingly.",
        },
        evidence=frozenset(
            {"window_id", "bank_code", "starts_at", "ends_at", "reason", "moved_count"}
        ),
        follow_up=True,
    ),
    Kind(
        type="bank.incident",
        producer="alerts (oncall.py)",
        audience=_ONCALL,
        severity="critical",
        resolves="the bank's payments are settled again",
        title={"zh-CN": "银行整体故障", "en": "bank incident"},
        template={
            "zh-CN": "银行 {bank_code}：过去一小时到期的 {fell_due} 笔交易中有 {overdue} 笔逾期"
            "（阈值 {threshold}）。",
            "en": "Bank {bank_code}: {overdue} of the {fell_due} payments that fell due in the "
            "last hour are overdue (threshold {threshold}).",
        },
        evidence=frozenset({"bank_code", "fell_due", "overdue", "threshold"}),
        alertname="SettlementBankIncident",
    ),
    Kind(
        type="pipeline.stalled",
        producer="matcher (core/stall.py)",
        audience=_ONCALL,
        severity="critical",
        resolves="the matcher clock moves again",
        title={"zh-CN": "处理流水线停滞", "en": "pipeline stalled"},
        template={
            "zh-CN": "匹配器时钟停在 {matcher_clock}：结算数据是否完整未知，逐笔逾期告警暂缓发出。",
            "en": "The matcher clock stopped at {matcher_clock}: the settlement feed is not "
            "known to be complete, so per-payment overdue alerts are held back.",
        },
        evidence=frozenset({"matcher_clock"}),
        alertname="SettlementPipelineStalled",
    ),
    Kind(
        type="calendar.missing",
        producer=_MATCHER,
        audience=_ONCALL,
        # Weeks ahead: nobody needs waking.
        severity="warning",
        resolves="the calendar year was loaded",
        title={"zh-CN": "缺少节假日日历", "en": "calendar missing"},
        template={
            "zh-CN": "日历 {calendar} 没有 {year} 年的数据：跨入 {year} 年的应到账时间按"
            "周一至周五估算。请载入官方节假日安排（PUT /v1/calendars/{calendar}/{year} "
            "或 `settlewatch calendar load FILE`）。",
            "en": "Calendar {calendar} has no data for {year}: deadlines of merchants on it "
            "that cross {year} are estimated on Monday–Friday. Load the official holiday "
            "schedule (PUT /v1/calendars/{calendar}/{year} or "
            "`settlewatch calendar load FILE`).",
        },
        evidence=frozenset({"calendar", "year"}),
        # Named as the Prometheus rule on settlewatch_matcher_calendar_missing, so Alertmanager
        # sees one alert whichever raised it.
        alertname="SettlewatchCalendarMissing",
    ),
)
KINDS: Mapping[str, Kind] = {k.type: k for k in _ALL}


def kind(finding_type: str) -> Kind:
    """The registry's entry of a type (KeyError naming it when there is none)."""
    try:
        return KINDS[finding_type]
    except KeyError:
        raise KeyError(
            f"unknown finding type {finding_type!r}: add it to common.findings"
        ) from None
