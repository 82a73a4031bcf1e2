"""What the misbehaving test SMTP servers share: faults planned per address, and a
count of what they accepted, so a test can prove nobody got a message twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    """Per-address faults; each fires ``times`` times, then the address is accepted."""

    faults: dict[str, tuple[str, int]] = field(default_factory=dict)
    delivered: list[str] = field(default_factory=list)
    data_seen: Counter[str] = field(default_factory=Counter)

    def fire(self, address: str, kind: str) -> bool:
        """Whether ``address`` has a ``kind`` fault left; uses one up if so."""
        fault = self.faults.get(address)
        if fault is None or fault[0] != kind or fault[1] == 0:
            return False
        self.faults[address] = (kind, fault[1] - 1)
        return True

    def most_copies(self) -> int:
        """The most messages any one recipient was given (1 when nobody got two)."""
        return max(Counter(self.delivered).values())
