"""Circuit breaker and backoff: a dead provider is not retried on every message.

Breaker states per provider: *closed* (calls go through), *open* after
``failures`` consecutive failed calls (calls are skipped for ``reset``
seconds), then *half-open* (one trial call: success closes it, failure opens
it again for another ``reset`` seconds).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False


class CircuitBreaker:
    def __init__(self, failures: int = 3, reset: float = 60.0, clock=time.monotonic) -> None:
        self.threshold = max(1, int(failures))
        self.reset = float(reset)
        self.clock = clock
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def state(self, name: str) -> str:
        with self._lock:
            st = self._states.get(name)
            if st is None or st.opened_at is None:
                return "closed"
            return "half-open" if self.clock() - st.opened_at >= self.reset else "open"

    def allow(self, name: str) -> bool:
        """Whether a call to ``name`` may go ahead now (claims the trial call when half-open)."""
        with self._lock:
            st = self._states.setdefault(name, _State())
            if st.opened_at is None:
                return True
            if self.clock() - st.opened_at < self.reset or st.trial:
                return False
            st.trial = True
            return True

    def success(self, name: str) -> None:
        with self._lock:
            self._states[name] = _State()

    def failure(self, name: str) -> None:
        with self._lock:
            st = self._states.setdefault(name, _State())
            st.failures += 1
            if st.trial or st.failures >= self.threshold:
                st.opened_at = self.clock()
            st.trial = False

    def retry_in(self, name: str) -> float:
        with self._lock:
            st = self._states.get(name)
            if st is None or st.opened_at is None:
                return 0.0
            return max(0.0, self.reset - (self.clock() - st.opened_at))


def backoff_delays(retries: int, base: float, cap: float) -> list[float]:
    """Seconds to wait before each retry: base, 2*base, 4*base ... capped."""
    return [min(cap, base * (2 ** i)) for i in range(max(0, int(retries)))]
