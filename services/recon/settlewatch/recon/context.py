"""What the recon handlers share, built once in the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.recon.desk import Desk
from settlewatch.recon.matching import LineMatcher
from settlewatch.recon.reconciling import PayoutReconciler
from settlewatch.recon.reference import References
from settlewatch.recon.store import SettlementFiles

__all__ = ["Recon", "ReconDep"]


@dataclass(frozen=True)
class Recon:
    engine: AsyncEngine
    clock: Callable[[], datetime]
    files: SettlementFiles
    references: References
    line_matcher: LineMatcher
    reconciler: PayoutReconciler
    desk: Desk


def _recon(request: Request) -> Recon:
    recon: Recon = request.app.state.recon
    return recon


ReconDep = Annotated[Recon, Depends(_recon)]
