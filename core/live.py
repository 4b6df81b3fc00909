"""One call's latest quota figures, carried on its ``Principal`` so the quota envelope needs no query.

``limits.admit`` fills in the spend windows and the rpm count it judged the
call on; ``ledger.reserve``, ``settle`` and ``release`` the key's and the
wallet's totals as their statements returned them, and how far this call's own
holds and charges moved the windows since admission. ``limits.envelope_headers``
reads them; ``alerts.after_settle`` compares them with the thresholds. A
``Live`` belongs to one call and is never shared between calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class KeyFigures(NamedTuple):
    """A key's credits: settled, held by open reservations, and its lifetime quota (None: no quota)."""

    spent: int
    reserved: int
    quota: int | None


class WalletFigures(NamedTuple):
    """A wallet's credits: its balance and what open reservations hold of it."""

    balance: int
    reserved: int


@dataclass(frozen=True)
class Window:
    """A rolling spend window of a key: its cap and use in credits, and when its oldest hour drops out."""

    name: str
    limit: int
    used: int
    reset_at: int  # Unix time

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass
class Live:
    """The figures each step of one call left behind (None: that step has not reported them)."""

    key: KeyFigures | None = None
    wallet: WalletFigures | None = None
    windows: list[Window] | None = None  # as admitted (only for a key with spend windows)
    rpm_used: int | None = None  # requests this minute, as admitted (only for a key with an rpm)
    win_delta: int = 0  # credits this call's reservations and settlements moved the windows since admission

    def remember(self, key: KeyFigures | None, wallet: WalletFigures | None) -> None:
        """Keep the key's and the wallet's totals; both or neither (a refusal may know only one)."""
        if key is not None and wallet is not None:
            self.key, self.wallet = key, wallet
        else:
            self.key = self.wallet = None
