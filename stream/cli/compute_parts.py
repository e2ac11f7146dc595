"""Reading ``rcr compute``'s input, in two processes when it is big enough to pay off.

The input (files in order) is cut in two at a line boundary. A forked child reads the
second part into its own ``BulkBatch`` while this process reads the first; the child sends
back its contacts (customers and contact_ids as exact numbers, times) and its rejections,
which this process appends to its own: duplicates across the split are found afterwards,
as within a part, so the answer never depends on the split.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import IO, NamedTuple, Protocol

from stream.engine.bulk import BatchSummary, BulkBatch, Contacts
from stream.engine.events import Rejection

# Lines are decoded this many bytes at a time: big enough for C loops, small enough for caches.
CHUNK_BYTES = 4 << 20
# Below this, forking and merging cost more than the second core gives back.
PARALLEL_FROM_BYTES = 32 << 20
# This process's share of the bytes. Besides its part it starts up, takes the child's
# result in (a thread, while it reads) and counts at the end: with 42% of 1M lines both
# processes took about 1.1 s of CPU after the fork.
PARENT_SHARE_PERCENT = 42
# Rejections a child sends back with their lines; beyond, only counts (the first ones print).
MAX_SENT_REJECTIONS = 1000
# mallopt's parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

Advance = Callable[[int], None]


class RejectionLog(Protocol):
    """Where invalid lines go, in input order: each with its file and line, or only counted."""

    def __call__(self, path: Path, number: int, rejection: Rejection) -> None: ...

    def count(self, counts: Counter[str]) -> None: ...


class Segment(NamedTuple):
    """Bytes ``[start, end)`` of a file, whole lines, and the number of its first line."""

    path: Path
    start: int
    end: int


class ChildResult(NamedTuple):
    summary: BatchSummary
    rejections: list[tuple[int, int, Rejection]]  # (segment index, line in segment, why)
    counts: Counter[str]


def read_input(
    paths: list[Path],
    batch: BulkBatch,
    on_rejection: RejectionLog,
    advance: Advance,
    parallel_from: int = PARALLEL_FROM_BYTES,
) -> Contacts:
    """Every line of ``paths`` into ``batch``; returns its contacts."""
    _keep_freed_memory()
    segments = [Segment(path, 0, path.stat().st_size) for path in paths]
    total = sum(segment.end for segment in segments)
    if total < parallel_from or (os.cpu_count() or 1) < 2:
        read_segments(segments, batch, on_rejection, advance)
        return batch.contacts()
    first, second = split(segments)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(second, batch, sender))
    child.start()
    sender.close()
    receiving = _Receiving(receiver, child)
    receiving.start()
    lines_before = read_segments(first, batch, on_rejection, advance)
    result = receiving.result()
    if result is not None:
        _replay(result, second, first, lines_before, on_rejection)
        advance(sum(segment.end - segment.start for segment in second))
        return batch.merged_with(result.summary)
    before = _continued_lines(first, second, lines_before)
    read_segments(second, batch, on_rejection, advance, before)
    return batch.contacts()


def _keep_freed_memory() -> None:
    """Let glibc's malloc keep the memory of freed arrays for the next chunk's, instead of
    handing chunk-sized arrays back and faulting fresh pages in for every chunk (that was a
    fifth of the CPU time). A no-op where there is no ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 64 << 20)  # arrays below it come from (and go back to) the heap
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)  # and the heap keeps what is freed


def split(segments: list[Segment]) -> tuple[list[Segment], list[Segment]]:
    """Two runs of whole lines, ``PARENT_SHARE_PERCENT`` of the bytes in the first."""
    half = sum(segment.end for segment in segments) * PARENT_SHARE_PERCENT // 100
    for index, segment in enumerate(segments):
        if half < segment.end:
            cut = _next_line_start(segment.path, half)
            before = [*segments[:index], Segment(segment.path, 0, cut)]
            after = [Segment(segment.path, cut, segment.end), *segments[index + 1 :]]
            return [s for s in before if s.end > s.start], [s for s in after if s.end > s.start]
        half -= segment.end
    return segments, []


def _next_line_start(path: Path, offset: int) -> int:
    with path.open("rb") as handle:
        handle.seek(offset)
        while block := handle.read(1 << 16):
            newline = block.find(b"\n")
            if newline >= 0:
                return offset + newline + 1
            offset += len(block)
    return offset


def read_segments(
    segments: list[Segment],
    batch: BulkBatch,
    on_rejection: RejectionLog,
    advance: Advance,
    first_lines: list[int] | None = None,
) -> list[int]:
    """Feed ``segments`` to ``batch``; returns the newlines each held.

    ``first_lines[i]`` is how many lines of segment i's file come before it (0: it starts
    the file), so that rejections carry the file's line numbers.
    """
    newlines = []
    for index, segment in enumerate(segments):
        before = first_lines[index] if first_lines else 0

        def report(
            number: int, rejection: Rejection, path: Path = segment.path, before: int = before
        ) -> None:
            on_rejection(path, before + number, rejection)

        line = 1  # the number of the next chunk's first line
        newline_count = 0
        with segment.path.open("rb") as handle:
            handle.seek(segment.start)
            for chunk in chunks(handle, CHUNK_BYTES, segment.end - segment.start):
                line += batch.add_lines(chunk, line, report)
                advance(len(chunk))
                newline_count = line - 1 - (not chunk.endswith(b"\n"))
        newlines.append(newline_count)
    return newlines


def chunks(handle: IO[bytes], size: int = CHUNK_BYTES, limit: int | None = None) -> Iterator[bytes]:
    """Whole lines, about ``size`` bytes at a time (``limit`` bytes in all, if given)."""
    carry = b""
    left = limit
    while block := handle.read(size if left is None else min(size, left)):
        if left is not None:
            left -= len(block)
        cut = block.rfind(b"\n") + 1
        if not cut:
            carry += block
            continue
        yield carry + memoryview(block)[:cut]  # one copy, not two
        carry = block[cut:]
    if carry:
        yield carry


def _continued_lines(first: list[Segment], second: list[Segment], newlines: list[int]) -> list[int]:
    """Lines before each segment of ``second`` in its file, given what ``first`` read."""
    before = []
    for segment in second:
        before.append(
            sum(
                count
                for done, count in zip(first, newlines, strict=True)
                if done.path == segment.path and done.end <= segment.start
            )
        )
    return before


class _Kept:
    """A child's rejection log: the first ones with their segment, all of them counted."""

    def __init__(self) -> None:
        self.segment = 0
        self.rejections: list[tuple[int, int, Rejection]] = []
        self.counts: Counter[str] = Counter()

    def __call__(self, path: Path, number: int, rejection: Rejection) -> None:
        self.counts[rejection.reason.value] += 1
        if len(self.rejections) < MAX_SENT_REJECTIONS:
            self.rejections.append((self.segment, number, rejection))

    def count(self, counts: Counter[str]) -> None:
        self.counts.update(counts)


def _child(segments: list[Segment], parent: BulkBatch, sender: Connection) -> None:
    """Read ``segments`` into a new batch like the parent's (still empty when forked)."""
    batch = BulkBatch(parent.max_record_bytes, parent.anonymous_ids)
    kept = _Kept()
    for index, segment in enumerate(segments):
        kept.segment = index
        read_segments([segment], batch, kept, _ignore)
    sender.send(ChildResult(batch.summary(), kept.rejections, kept.counts))
    sender.close()


def _ignore(_: int) -> None:
    """The child draws no progress bar."""


class _Receiving(threading.Thread):
    """Takes the child's result off the pipe as soon as it comes, while this process still
    reads its own part: the transfer costs the reading hardly any time."""

    def __init__(self, receiver: Connection, child: BaseProcess) -> None:
        super().__init__(name="rcr-compute-receive", daemon=True)
        self.receiver = receiver
        self.child = child
        self._result: ChildResult | None = None

    def run(self) -> None:
        with contextlib.suppress(EOFError):  # the child failed: no result
            self._result = self.receiver.recv()

    def result(self) -> ChildResult | None:
        """The child's result; None if it failed (then this process reads its part)."""
        self.join()
        self.child.join()
        return self._result if self.child.exitcode == 0 else None


def _replay(
    result: ChildResult,
    second: list[Segment],
    first: list[Segment],
    newlines: list[int],
    log: RejectionLog,
) -> None:
    """The child's rejections, numbered in their files as if read here, then its other counts.

    The child sent its first ``MAX_SENT_REJECTIONS``: the later ones come after at least as
    many of the whole input, so they would only have been counted anyway.
    """
    before = _continued_lines(first, second, newlines)
    sent: Counter[str] = Counter()
    for index, number, rejection in result.rejections:
        log(second[index].path, before[index] + number, rejection)
        sent[rejection.reason.value] += 1
    log.count(result.counts - sent)
