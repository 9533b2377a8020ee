"""Request examples for the OpenAPI document (shown in /docs)."""

from __future__ import annotations

from typing import Any

TRANSACTIONS: dict[str, Any] = {
    "a sale and its refund": {
        "items": [
            {
                "txn_id": "T20251120-000123",
                "merchant_id": "M-10001",
                "terminal_id": "POS-7731",
                "type": "sale",
                "amount_minor": 12800,
                "currency": "CNY",
                "occurred_at": "2025-11-20T10:02:31+08:00",
                "card_fingerprint": "fp_8c1d2e",
                "rrn": "532410283771",
                "stan": "000123",
                "auth_code": "A1B2C3",
                "region": "Shanghai",
            },
            {
                "txn_id": "T20251120-000187",
                "merchant_id": "M-10001",
                "terminal_id": "POS-7731",
                "type": "refund",
                "original_txn_id": "T20251120-000123",
                "amount_minor": 2800,
                "currency": "CNY",
                "occurred_at": "2025-11-20T15:40:00+08:00",
                "card_fingerprint": "fp_8c1d2e",
            },
        ]
    }
}

SETTLEMENTS: dict[str, Any] = {
    "a payout with a fee, and a failed payout": {
        "items": [
            {
                "settlement_id": "S-ICBC-20251121-0042",
                "merchant_id": "M-10001",
                "bank_code": "ICBC",
                "status": "settled",
                "occurred_at": "2025-11-21T09:15:00+08:00",
                "value_date": "2025-11-21",
                "items": [
                    {
                        "txn_id": "T20251120-000123",
                        "gross_minor": 12800,
                        "fee_minor": 77,
                        "net_minor": 12723,
                    },
                    {
                        "txn_id": "T20251120-000187",
                        "gross_minor": -2800,
                        "fee_minor": 0,
                        "net_minor": -2800,
                    },
                ],
            },
            {
                "settlement_id": "S-ICBC-20251121-0043",
                "merchant_id": "M-10001",
                "bank_code": "ICBC",
                "status": "failed",
                "occurred_at": "2025-11-21T09:16:00+08:00",
                "failure_reason": "收款账户已销户 (beneficiary account closed)",
                "items": [
                    {
                        "txn_id": "T20251120-000200",
                        "gross_minor": 5000,
                        "fee_minor": 30,
                        "net_minor": 4970,
                    }
                ],
            },
        ]
    }
}

MERCHANT: dict[str, Any] = {
    "T+1 merchant with a webhook": {
        "name": "上海小笼包 (Shanghai Dumplings)",
        "settlement_bank": "ICBC",
        "settlement_cycle": "T1",
        "timezone": "Asia/Shanghai",
        "calendar": "CN",
        "cutoff_time": "23:00",
        "due_time": "24:00",
        "mdr_bps": 60,
        "amount_tolerance_minor": 1,
        "locale": "zh-CN",
        "webhook": {
            "url": "https://merchant.example.com/settlewatch",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
        "receiving_account": {
            "holder": "上海小笼包餐饮有限公司",
            "bank_name": "中国工商银行上海分行",
            "number": "6222020200112233445",
        },
    },
    "instant settlement within 2 hours": {
        "name": "Night Market Stall 17",
        "settlement_bank": "CMB",
        "settlement_cycle": "instant",
        "instant_sla": "PT2H",
        "locale": "en",
    },
}

CALENDAR_YEAR: dict[str, Any] = {
    "2027 as published": {
        "holidays": ["2027-01-01", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10"],
        "workdays": ["2027-02-20"],
        "source": "国务院办公厅关于2027年部分节假日安排的通知",
        "published_at": "2026-11-20T17:00:00+08:00",
    }
}

MAINTENANCE_WINDOW: dict[str, Any] = {
    "core banking upgrade": {
        "bank_code": "ICBC",
        "starts_at": "2025-11-22T00:00:00+08:00",
        "ends_at": "2025-11-22T06:00:00+08:00",
        "reason": "核心系统升级 (core banking system upgrade)",
    }
}

TERMINAL: dict[str, Any] = {
    "a terminal registered in Beijing": {"merchant_id": "M1", "region": "北京"},
    "a terminal migrated from POS-1 (mid-day)": {
        "merchant_id": "M1",
        "region": "北京",
        "replaces": "POS-1",
        "status": "active",
    },
}
