"""Run sync user code from asyncio on a small pool of daemon threads.

Unlike ``loop.run_in_executor(None, ...)`` (non-daemon threads, joined when the loop and the
interpreter shut down), a call whose awaiting coroutine is cancelled or times out is
*abandoned*: its thread keeps running, but it can never keep the process alive, and the next
call gets another thread (one is started whenever none is idle). The caller's contextvars
(the current case) are copied into the call. Whatever the call raises, ``SystemExit`` and
``KeyboardInterrupt`` included, is raised by :func:`run_sync` in the awaiting coroutine.
:func:`abandoned` names the abandoned calls still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_IDLE_EXIT_S = 60.0  # an idle thread beyond the ones still needed exits after this long


class _Call:
    __slots__ = ("args", "ctx", "done", "fn", "fut", "loop", "name")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], name: str,
                 loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any]) -> None:
        self.fn, self.args, self.name, self.loop, self.fut = fn, args, name, loop, fut
        self.ctx = contextvars.copy_context()
        self.done = False


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():  # the awaiting coroutine gave up (cancelled or timed out)
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class _Pool:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._jobs: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job, minus jobs queued for them
        self._abandoned: dict[int, _Call] = {}
        self._ids = itertools.count(1)

    def submit(self, call: _Call) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # this job is an idle thread's
        if spawn:
            threading.Thread(target=self._work, name=f"evalkit-sync-{next(self._ids)}", daemon=True).start()
        self._jobs.put(call)

    def abandon(self, call: _Call) -> None:
        with self._lock:
            if not call.done:
                self._abandoned[id(call)] = call

    def abandoned(self) -> list[str]:
        with self._lock:
            return [c.name for c in self._abandoned.values()]

    def _work(self) -> None:
        while True:
            try:
                call = self._jobs.get(timeout=_IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # a spare thread: no job is queued for it
                        self._idle -= 1
                        return
                continue
            try:
                ok, value = True, call.ctx.run(call.fn, *call.args)
            except BaseException as exc:  # SystemExit / KeyboardInterrupt too: the awaiting coroutine's to handle
                ok, value = False, exc
            with self._lock:
                call.done = True
                self._abandoned.pop(id(call), None)
                self._idle += 1  # before the result is out, so the caller's next call finds this thread
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                call.loop.call_soon_threadsafe(_settle, call.fut, ok, value)
            del call, value  # hold neither the result nor a traceback while idle


_pool = _Pool()
if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's threads
    os.register_at_fork(after_in_child=_pool.reset)


async def run_sync(fn: Callable[..., T], *args: Any, name: str | None = None) -> T:
    """Await ``fn(*args)`` run on a daemon thread, in a copy of the current context."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()
    call = _Call(fn, args, name or getattr(fn, "__qualname__", None) or repr(fn), loop, fut)
    _pool.submit(call)
    try:
        return await fut
    except asyncio.CancelledError:
        _pool.abandon(call)
        raise


def abandoned() -> list[str]:
    """Names of calls still running after their awaiting coroutine gave up (cancelled or timed out)."""
    return _pool.abandoned()
