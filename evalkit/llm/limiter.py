"""Per-model AIMD concurrency limiter: +1 per success up to the maximum, halve on 429."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from types import TracebackType

from evalkit.llm.config import settings


class AIMDLimiter:
    """An asyncio limiter whose limit adapts: additive increase, multiplicative decrease."""

    def __init__(self, initial: int = 32, minimum: int = 1, maximum: int | None = None) -> None:
        self.maximum = max(1, maximum if maximum is not None else initial)
        self.minimum = max(1, min(minimum, self.maximum))
        self.limit = float(max(self.minimum, min(initial, self.maximum)))
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # a slot was handed over just as we were cancelled
            else:
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    def on_success(self) -> None:
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1)
            self._wake()

    def on_throttle(self) -> None:
        self.limit = max(float(self.minimum), self.limit / 2)

    async def __aenter__(self) -> AIMDLimiter:
        await self.acquire()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AIMDLimiter]] = (
    weakref.WeakKeyDictionary()
)


def for_model(model: str) -> AIMDLimiter:
    """The limiter of ``model`` in the running event loop (created on first use)."""
    per_loop = _limiters.setdefault(asyncio.get_running_loop(), {})
    lim = per_loop.get(model)
    if lim is None:
        n = settings().model_concurrency
        lim = per_loop[model] = AIMDLimiter(initial=n, maximum=n)
    return lim


def reset() -> None:
    """Forget all limiters (tests, or after changing ``EVALKIT_MODEL_CONCURRENCY``)."""
    _limiters.clear()
