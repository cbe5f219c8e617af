"""Response bytes -> answers with typed tables, in worker processes when a response is large.

Parsing is most of the exporter's CPU: lxml builds the tree, then ``parse.py`` walks every record
in Python.  Done on the event loop it holds the GIL, so one core parses while the requests of
every other window wait for it.  A :class:`ResponseDecoder` parses small responses inline (a
round trip to a worker costs more than it saves) and large ones in a pool of worker processes;
workers send back Arrow tables, which pickle as buffers rather than Python objects.  Both paths
run the same pure function, :func:`decode_response`, so they give the same answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..errors import ParseError
from ..model.datasets import by_name
from ..obs.logs import event
from ..records import parse
from .protocol import Body, BodyResponse, RecordSpec, parse_response

__all__ = ["INLINE_BELOW_BYTES", "ResponseDecoder", "auto_workers", "decode_response", "jobs_for"]


#: Responses smaller than this are parsed on the event loop (a 500-record attendee page is ~0.5 MB;
#: below ~64 KiB, pickling the bytes and the table costs about what parsing them does).
INLINE_BELOW_BYTES = 64 * 1024

#: One body's decoding job: its record element and how to type its records (None: keep elements).
Job = tuple[str | None, RecordSpec | None]


def auto_workers() -> int:
    """The default pool size: the cores this process may use, at most 4; 0 on a single core
    (a worker would only compete with the event loop for it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 0 if cores <= 1 else min(cores, 4)


def jobs_for(bodies: Sequence[Body]) -> list[Job]:
    """The decoding jobs of a batch (what a worker needs; no credentials ever leave the process)."""
    return [(body.record_element, body.parse_as) for body in bodies]


def decode_response(data: bytes, jobs: Sequence[Job]) -> list[BodyResponse] | ParseError:
    """Parse one response; the records of every successful body with a :class:`RecordSpec`
    become a typed table in ``BodyResponse.parsed``.  Such bodies keep no lxml elements, failed
    ones included (classifying reads only their scalar fields), so answers can cross processes.
    A response that is not a readable Webex message comes back as its :class:`ParseError`."""
    try:
        answers = parse_response(data, record_elements=[element for element, _ in jobs])
    except ParseError as exc:
        return exc
    out = []
    for index, answer in enumerate(answers):
        spec = jobs[index][1] if index < len(jobs) else None
        if spec is not None:
            page = None
            if answer.success:
                page = parse.parse_records(by_name(spec.dataset), answer.records, site=spec.site, zone=spec.zone,
                                           preliminary=spec.preliminary)
            answer = dataclasses.replace(answer, records=[], content=None, parsed=page)
        out.append(answer)
    return out


#: Pools lost in a row (workers killed, or none can start) before the decoder stops using workers.
MAX_BROKEN_POOLS = 3

#: How often a worker checks that the exporter that started it is still alive.
PARENT_CHECK_SECONDS = 0.5


#: What stops a run: the parent's to handle (it drops the windows in flight and shuts the pool
#: down in order); a terminal's Ctrl-C and systemd's stop reach every process of the group.
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker_started(parent: int) -> None:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    # A parent killed outright (SIGKILL, OOM) cannot shut the pool down, and every worker holds
    # the task queue's write end too, so no worker ever sees EOF: each watches its parent instead.
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _warm_up() -> None:
    """Nothing: a worker that ran this has started and imported the parser."""


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


class ResponseDecoder:
    """Decodes responses inline or in up to ``workers`` processes (``0``: always inline).

    The pool starts on the first large response, so short runs never pay for it; until its
    workers have started (about a second: a fresh interpreter importing lxml and pyarrow),
    responses are parsed inline rather than left waiting for them.  ``close()`` stops it.  A pool whose worker died is replaced and that response parsed inline; after
    ``MAX_BROKEN_POOLS`` losses in a row every response is parsed inline.
    """

    def __init__(self, workers: int, *, inline_below: int = INLINE_BELOW_BYTES) -> None:
        self.workers = max(0, workers)
        self.inline_below = inline_below
        self.in_pool = 0  # responses decoded by a worker (for tests and benchmarks)
        self._executor: ProcessPoolExecutor | None = None
        self._starting: list[Future[None]] = []  # the new pool's warm-up calls
        self._broken = 0  # pools lost in a row

    def __repr__(self) -> str:
        return f"ResponseDecoder(workers={self.workers}, inline_below={self.inline_below})"

    async def decode(self, data: bytes, bodies: Sequence[Body]) -> list[BodyResponse] | ParseError:
        """The answers to ``bodies`` in ``data`` (see :func:`decode_response`)."""
        jobs = jobs_for(bodies)
        # Bodies without a spec keep their lxml elements, which cannot cross a process boundary.
        if self.workers == 0 or len(data) < self.inline_below or any(spec is None for _, spec in jobs):
            return decode_response(data, jobs)
        try:
            executor = self._pool()
        except (BrokenProcessPool, OSError) as exc:  # no worker process could be started
            return self._lost(None, exc, data, jobs)
        if not all(started.done() for started in self._starting):
            return decode_response(data, jobs)
        try:
            for started in self._starting:
                started.result()  # a pool whose workers could not start raises BrokenProcessPool here
            result = await asyncio.get_running_loop().run_in_executor(executor, decode_response, data, jobs)
        except (BrokenProcessPool, OSError) as exc:  # a worker died, or none could be started
            return self._lost(executor, exc, data, jobs)
        self._broken = 0
        self.in_pool += 1
        return result

    def _lost(
        self, executor: ProcessPoolExecutor | None, exc: BaseException, data: bytes, jobs: list[Job]
    ) -> list[BodyResponse] | ParseError:
        """A pool failed: drop it, count the loss once per pool (the other responses it held fail
        too), and parse this response inline."""
        if executor is None or self._executor is executor:
            if executor is not None:
                self._discard(executor)
            self._broken += 1
            if self._broken >= MAX_BROKEN_POOLS:
                event("parse workers keep failing; parsing on the event loop from now on", level=logging.WARNING,
                      failures=self._broken, error=type(exc).__name__)
                self.workers = 0
            else:
                event("a parse worker process died; parsing this response inline, a new pool takes the next one",
                      level=logging.WARNING, error=type(exc).__name__)
        return decode_response(data, jobs)

    async def start(self) -> None:
        """Start the workers now and wait until they are ready (for callers that want them from the
        first response on); nothing without workers."""
        if self.workers == 0:
            return
        self._pool()
        await asyncio.gather(*(asyncio.wrap_future(started) for started in self._starting), return_exceptions=True)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the parent has threads (the commit thread, aiohttp's resolver).
            context = multiprocessing.get_context("spawn")
            executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_started,
                                           initargs=(os.getpid(),))
            # Workers start with the stop signals blocked (a child inherits the mask): one still
            # importing, before _worker_started ignores them, would die of a group's SIGTERM or print a
            # KeyboardInterrupt traceback.  Blocked, not ignored, here: the parent's own stop signal
            # meanwhile waits, and arrives as soon as the mask is restored.
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                starting = [executor.submit(_warm_up) for _ in range(self.workers)]  # starts the processes
            except BaseException:
                executor.shutdown(wait=False, cancel_futures=True)
                raise
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            self._executor, self._starting = executor, starting
        return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        if self._executor is executor:
            self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the worker processes (they finish the response in hand)."""
        if self._executor is not None:
            executor, self._executor = self._executor, None
            executor.shutdown(wait=True, cancel_futures=True)
