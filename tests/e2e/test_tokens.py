"""A token's life on `settlewatch up` (SPEC §14): issued by ingest, honoured by every service,
revoked everywhere within 5 s."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.stack import SERVICES, StartStack

pytestmark = pytest.mark.e2e


def test_a_merchant_token_reads_its_own_payment_and_is_refused_everywhere_once_revoked(
    start_stack: StartStack,
) -> None:
    stack = start_stack()
    stack.wait_ready()
    acquirer = {"authorization": f"Bearer {(stack.data_dir / 'dev-token').read_text().strip()}"}
    ingest, matcher = stack.url("ingest"), stack.url("matcher")
    profile = {k: v for k, v in PROFILE.items() if k != "webhook"}
    now = datetime.now(UTC).isoformat()
    with httpx.Client(headers=acquirer, timeout=10) as http:
        for merchant in ("M1", "M2"):
            assert http.put(f"{ingest}/v1/merchants/{merchant}", json=profile).status_code == 201
        sales = [sale("T1", occurred_at=now), sale("T2", merchant_id="M2", occurred_at=now)]
        assert http.post(f"{ingest}/v1/transactions", json={"items": sales}).status_code == 202
        issued = http.post(
            f"{ingest}/v1/tokens", json={"scope": "merchant:M1", "description": "M1's portal"}
        )
        assert issued.status_code == 201, issued.text
        token, token_id = issued.json()["token"], issued.json()["token_id"]

        as_m1 = {"authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 30
        while (own := http.get(f"{matcher}/v1/payments/T1", headers=as_m1)).status_code == 404:
            assert time.monotonic() < deadline, "the matcher never stored T1"
            time.sleep(0.2)
        assert own.status_code == 200 and own.json()["merchant_id"] == "M1"
        assert http.get(f"{matcher}/v1/payments/T2").status_code == 200  # it is there…
        assert http.get(f"{matcher}/v1/payments/T2", headers=as_m1).status_code == 404  # …not M1's
        reads = {
            "ingest": f"{ingest}/v1/merchants/M1",
            "matcher": f"{matcher}/v1/payments/T1",
            "alerts": f"{stack.url('alerts')}/v1/alerts",
            "recon": f"{stack.url('recon')}/v1/payouts",
        }
        assert set(reads) == set(SERVICES) - {"console"}  # the console has no API of its own
        answers = {name: http.get(url, headers=as_m1).status_code for name, url in reads.items()}
        assert answers == dict.fromkeys(reads, 200)

        assert http.delete(f"{ingest}/v1/tokens/{token_id}").status_code == 204
        revoked_at = time.monotonic()
        refused: dict[str, float] = {}
        while len(refused) < len(reads):
            for name, url in reads.items():
                if name not in refused and http.get(url, headers=as_m1).status_code == 401:
                    refused[name] = time.monotonic() - revoked_at
            assert time.monotonic() - revoked_at < 5.0, f"still accepted after 5 s: {refused}"
            time.sleep(0.05)
        assert http.get(reads["ingest"]).status_code == 200  # the acquirer goes on
    assert stack.stop() == 0
