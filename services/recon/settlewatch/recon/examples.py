"""Request examples for the OpenAPI document (shown in /docs)."""

from __future__ import annotations

SETTLEMENT_ACCOUNT = {
    "account_number": "6222021001000012345",
    "currency": "CNY",
    "bank_code": "ICBC",
    "owner": "M1001",
}

FILE_MAPPING = {
    "delimiter": ",",
    "encoding": "gbk",
    "header_row": 3,
    "columns": {
        "occurred_at": "交易时间",
        "terminal_id": "终端号",
        "rrn": "参考号",
        "auth_code": "授权码",
        "kind": "交易类型",
        "gross": "交易金额",
        "fee": "手续费",
        "value_date": "清算日期",
    },
    "thousands_separator": ",",
    "kinds": {"消费": "sale", "退货": "refund"},
}
