"""Category values as small integer ids, read from a batch's bytes inside numba.

    vocab = Vocabulary()
    ids = vocab.intern(buf, spans, scopes)  # spans: start << SPAN_BITS | length; scopes: small ints
    vocab.names[ids[0]]                     # the value's name, a str

A value is its bytes (a JSON string's content, or ``true``/``false``): within a scope, equal
bytes get one id, whatever the hash does (the bytes are compared in full). Ids count up across
scopes in the order values are first seen, so ``names`` stays a list.

What it holds is bounded: a scope takes at most ``max_per_scope`` values (beyond, a value's id is
:data:`OTHER`, which the windows count as ``<other>``), and all scopes at most ``max_bytes`` of
value bytes; past those, :meth:`Vocabulary.maybe_reset` starts it afresh at a batch boundary.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from driftwire.detectors.numba_cache import tolerate_unreadable_entries

tolerate_unreadable_entries()

#: the id of a value its scope has no room for
OTHER = -1
#: the kernel's answer when the vocabulary must grow before it takes the value
_FULL = -2
#: values a scope keeps (a categorical window learns at most as many categories)
MAX_PER_SCOPE = 1024
#: value bytes of all scopes together
MAX_BYTES = 8 << 20
SPAN_BITS = 24
_SPAN_MASK = (1 << SPAN_BITS) - 1
_M1 = np.uint64(0x100000001B3)
_BASIS = np.uint64(0xCBF29CE484222325)

_jit = nb.njit(cache=True, nogil=True)


class Table(NamedTuple):
    """The vocabulary's arrays: open-addressing ``slots`` (entry + 1, 0 empty), per entry its
    hash, scope and bytes (``start``, ``length`` in ``arena``); values per scope; ``state``
    [entries, arena bytes used]."""

    slots: np.ndarray
    hashes: np.ndarray
    scopes: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    arena: np.ndarray
    counts: np.ndarray
    state: np.ndarray


@_jit
def _hash(buf, s, n, scope):
    h = _BASIS ^ np.uint64(scope)
    for j in range(n):
        h = (h ^ np.uint64(buf[s + j])) * _M1
    return h ^ (h >> np.uint64(29))


@_jit
def lookup(buf, s, n, scope, t, max_per_scope):
    """The id of value ``buf[s:s+n]`` in ``scope``, added if new: OTHER when the scope is full,
    _FULL when the table must grow first."""
    h = _hash(buf, s, n, scope)
    mask = t.slots.shape[0] - 1
    i = np.int64(h & np.uint64(mask))
    while t.slots[i] != 0:
        v = t.slots[i] - 1
        if t.hashes[v] == h and t.scopes[v] == scope and t.lengths[v] == n:
            a = t.starts[v]
            j = 0
            while j < n and t.arena[a + j] == buf[s + j]:
                j += 1
            if j == n:
                return v
        i = (i + 1) & mask
    if t.counts[scope] >= max_per_scope:
        return OTHER
    v = t.state[0]
    used = t.state[1]
    if v >= t.hashes.shape[0] or used + n > t.arena.shape[0] or 2 * (v + 1) > t.slots.shape[0]:
        return _FULL
    for j in range(n):
        t.arena[used + j] = buf[s + j]
    t.hashes[v], t.scopes[v], t.starts[v], t.lengths[v] = h, scope, used, n
    t.slots[i] = v + 1
    t.counts[scope] += 1
    t.state[0] = v + 1
    t.state[1] = used + n
    return v


@_jit
def intern(buf, spans, scopes, ids, start, t, max_per_scope):
    """``ids[k]`` of the value at ``spans[k]`` in ``scopes[k]``, from ``start``; returns where it
    stopped (``len(spans)`` when done, less when the table must grow)."""
    for k in range(start, spans.shape[0]):
        span = spans[k]
        v = lookup(buf, span >> SPAN_BITS, span & _SPAN_MASK, scopes[k], t, max_per_scope)
        if v == _FULL:
            return k
        ids[k] = v
    return spans.shape[0]


@_jit
def _rehash(t):
    mask = t.slots.shape[0] - 1
    for v in range(t.state[0]):
        i = np.int64(t.hashes[v] & np.uint64(mask))
        while t.slots[i] != 0:
            i = (i + 1) & mask
        t.slots[i] = v + 1


class Vocabulary:
    """Ids of category values per scope (see the module doc)."""

    def __init__(self, max_per_scope: int = MAX_PER_SCOPE, max_bytes: int = MAX_BYTES):
        self.max_per_scope = max_per_scope
        self.max_bytes = max_bytes
        self.generation = -1
        self.reset()

    def reset(self) -> None:
        """Forget every value (ids start again from 0); scopes stay."""
        self.table = Table(np.zeros(64, np.int64), np.zeros(16, np.uint64), np.zeros(16, np.int64),
                           np.zeros(16, np.int64), np.zeros(16, np.int64), np.zeros(256, np.uint8),
                           np.zeros(8, np.int64), np.zeros(2, np.int64))
        #: each id's value
        self.names: list[str] = []
        #: counts the resets: ids of one generation mean nothing in the next
        self.generation += 1

    def maybe_reset(self) -> bool:
        """Start afresh if the values' bytes reached their bound; whether it did. Call it only
        between batches: ids a batch was given must keep their names until it is processed."""
        if self.table.state[1] < self.max_bytes:
            return False
        self.reset()
        return True

    def intern(self, buf: np.ndarray, spans: np.ndarray, scopes: np.ndarray) -> np.ndarray:
        """The id of each value (``OTHER`` for one its scope has no room for, or once the
        values' bytes reached their bound and :meth:`maybe_reset` has not run)."""
        ids = np.empty(spans.size, dtype=np.int64)
        if not spans.size:
            return ids
        top = int(scopes.max())
        if top >= self.table.counts.size:
            self.table = self.table._replace(counts=_grown(self.table.counts, 2 * (top + 1)))
        first = int(self.table.state[0])
        k = 0
        room = self.max_per_scope if self.table.state[1] < self.max_bytes else 0
        while True:
            k = intern(buf, spans, scopes, ids, k, self.table, room)
            if k == spans.size:
                break
            self._grow(int(spans[k]) & _SPAN_MASK)
        self._name(first)
        return ids

    def _name(self, first: int) -> None:
        t = self.table
        arena = t.arena
        for v in range(first, int(t.state[0])):
            a = int(t.starts[v])
            self.names.append(arena[a:a + int(t.lengths[v])].tobytes().decode("utf-8", "surrogatepass"))

    def code(self, scope: int, name: str) -> int:
        """The id of one value given as a str."""
        raw = name.encode("utf-8", "surrogatepass")
        buf = np.frombuffer(raw + bytes(8), dtype=np.uint8)
        return int(self.intern(buf, np.array([len(raw)], dtype=np.int64), np.array([scope], dtype=np.int64))[0])

    def get_state(self) -> list:
        """The values with their scopes, in id order: interned again in this order, they get the same ids."""
        t = self.table
        return [[int(scope), name] for scope, name in zip(t.scopes[:len(self.names)].tolist(), self.names)]

    def set_state(self, state: list) -> None:
        self.reset()
        for scope, name in state:
            self.code(scope, name)

    def _grow(self, length: int) -> None:
        t = self.table
        n, used = int(t.state[0]), int(t.state[1])
        if n >= t.hashes.size:
            size = 2 * t.hashes.size
            t = t._replace(hashes=_grown(t.hashes, size), scopes=_grown(t.scopes, size),
                           starts=_grown(t.starts, size), lengths=_grown(t.lengths, size))
        if used + length > t.arena.size:
            t = t._replace(arena=_grown(t.arena, 2 * (used + length)))
        if 2 * (n + 1) > t.slots.size:
            t = t._replace(slots=np.zeros(4 * t.slots.size, np.int64))
            _rehash(t)
        self.table = t


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    b = np.zeros(max(size, a.size), dtype=a.dtype)
    b[:a.size] = a
    return b


def warm_up() -> None:
    """Compile or load the kernels before the first batch waits on them."""
    vocab = Vocabulary()
    scope = 0
    buf = np.frombuffer(b"truefalse" + bytes(64), dtype=np.uint8)
    spans = np.array([(0 << SPAN_BITS) | 4, (4 << SPAN_BITS) | 5] * 40, dtype=np.int64)
    vocab.intern(buf, spans, np.full(spans.size, scope, dtype=np.int64))
