"""Real editing traces (``traces/``) turned into what a Yjs client types.

Trace positions count Unicode code points; Yjs counts UTF-16 code units.
"""

from __future__ import annotations

from bench.common import load_trace

Patch = tuple[int, int, str]


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def utf16_trace(name: str, count: int) -> tuple[list[list[Patch]], str]:
    """The first ``count`` transactions of trace ``name`` in UTF-16 positions, and the text after.

    The trace starts from its ``startContent``; the text returned is what a
    client starting from that content shows after the transactions.
    """
    trace = load_trace(name)
    text = trace.start
    wide = sum(not ch.isascii() for ch in text)
    converted: list[list[Patch]] = []
    for txn in trace.txns[:count]:
        patches: list[Patch] = []
        for position, deleted, inserted in txn:
            gone = text[position : position + deleted]
            if wide:
                patches.append((_units(text[:position]), _units(gone), inserted))
            else:
                patches.append((position, deleted, inserted))
            wide += sum(not ch.isascii() for ch in inserted) - sum(not ch.isascii() for ch in gone)
            text = text[:position] + inserted + text[position + deleted :]
        converted.append(patches)
    return converted, text
