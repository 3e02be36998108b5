"""Checking the hash chain of a log page by page, in worker processes.

Hashing is the costliest part of verifying a log (a canonical JSON header and
SHA-256 per event), and every block can be checked on its own: its events must
chain from the hash stored before it to the hashes stored in it. So pages of
blocks can go to a small process pool while the caller replays the CRDT
updates, and the two run in parallel. The pages go as stored (compressed
bodies): the workers decode them, so decoding is off the replaying process too.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from types import TracebackType
from typing import Self

from eventstore.blocks import HASH_PREFIX, Block, PackedBlock, unpacked
from eventstore.events import ChainHasher, StoredEvent, verify_chain

POOL_FROM_EVENTS = 10_000
POOL_OF_TWO_FROM_CORES = 4
# Pages being hashed at once; bounds the memory held for the workers.
MAX_PAGES_IN_FLIGHT = 4


def broken_links(previous: bytes, events: Sequence[StoredEvent]) -> list[int]:
    """The seqs whose stored hash does not follow from the stored hash before them.

    Each link is checked by :func:`eventstore.events.verify_chain`, the one
    definition of the hash, whatever fields it covers.
    """
    broken = []
    for event in events:
        if verify_chain(previous, [event]) is not None:
            broken.append(event.seq)
        previous = event.hash
    return broken


def broken_in_blocks(
    doc_id: str, previous: bytes, segments: Sequence[Block | PackedBlock]
) -> list[int]:
    """The first seq of each block that does not follow from the stored hash before it.

    A block's events are rechained from the stored hash before the block and
    compared with the stored hash prefixes and, for the last event, the full
    stored hash (which seals the whole block); a tail event (a block of one)
    is compared with its full stored hash. Only the first broken event of a
    block can be named, since the full hashes after it are not stored.
    """
    hasher = ChainHasher(doc_id)
    broken = []
    for block in map(unpacked, segments):
        hashes = hasher.hashes(previous, block.first_seq, block.events)
        for offset, (found, stored) in enumerate(zip(hashes, block.prefixes, strict=True)):
            if found[:HASH_PREFIX] != stored:
                broken.append(block.first_seq + offset)
                break
        else:
            if hashes and hashes[-1] != block.last_hash:
                broken.append(block.last_seq)
        previous = block.last_hash
    return broken


class ChainChecker:
    """Checks pages in a process pool (in this process when ``workers`` is 0).

    Use as an async context manager; :meth:`submit` pages in order, then
    :meth:`broken` gives every broken link found, in seq order.
    """

    def __init__(self, workers: int, doc_id: str = "") -> None:
        self._workers = workers
        self._doc_id = doc_id
        self._pool: Executor | None = None
        self._in_flight: list[asyncio.Future[list[int]]] = []
        self._broken: list[int] = []

    async def __aenter__(self) -> Self:
        if self._workers > 0:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=start_method())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for future in self._in_flight:
            future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    async def submit(self, previous: bytes, blocks: Sequence[Block | PackedBlock]) -> None:
        """Check ``blocks`` (consecutive), the first chaining onto ``previous``.

        Packed blocks are decoded by whoever checks them, so with workers the
        decoding happens in their processes too.
        """
        if self._pool is None:
            self._broken += broken_in_blocks(self._doc_id, previous, blocks)
            return
        loop = asyncio.get_running_loop()
        page = list(blocks)
        self._in_flight.append(
            loop.run_in_executor(self._pool, broken_in_blocks, self._doc_id, previous, page)
        )
        if len(self._in_flight) > MAX_PAGES_IN_FLIGHT:
            self._broken += await self._in_flight.pop(0)

    async def broken(self) -> list[int]:
        """Wait for every submitted page; the broken links, in seq order."""
        while self._in_flight:
            self._broken += await self._in_flight.pop(0)
        return self._broken


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def start_method() -> multiprocessing.context.BaseContext:
    """fork when this process has one thread, else forkserver.

    A forked worker starts in milliseconds with every module already imported
    (a forkserver child imports them again: about a second). The inherited
    event loop and sockets are never touched: the worker only runs
    :func:`broken_in_blocks` and leaves through ``os._exit``. Another thread
    might hold a lock at the moment of the fork, though, so with threads
    about (the SQLite engine has one) the slower, clean start is used.
    """
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")


def default_workers(events: int, cores: int | None = None) -> int:
    """Hashing processes worth starting for a log of ``events`` events.

    One worker as soon as there is a second core: it takes the hashing and
    the full decoding of the blocks, about half of a verify, off the process
    that replays (measured on two cores: 260,000 events in 1.5-2.0 s against
    2.8-3.0 s alone; a second worker there only competes with the replay and
    the database). Two with four cores or more. None for short logs, which
    are checked before a pool would be of use.
    """
    if cores is None:
        cores = _usable_cores()
    if events < POOL_FROM_EVENTS or cores < 2:
        return 0
    return 1 if cores < POOL_OF_TWO_FROM_CORES else 2
