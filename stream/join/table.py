"""The label join of one partition on columnar batches, in numba: :class:`~.store.JoinStore`'s
semantics (its module doc is the specification) at a fraction of its time and memory.

    table = JoinTable(ttl=3600.0, max_pending=200_000)
    table.add_predictions(buf, predictions)   # a PREDICTIONS array, in message order
    table.add_labels(buf, labels)             # a LABELS array
    pairs = table.take_pairs()                # pairs.rows: PAIR rows; pairs.event_id(i): str

An event id is a span of ``buf``, the batch's bytes (at most 65,535 of them). Models and
versions are 32-bit codes that the caller keeps (the same codes for predictions and labels); a
prediction's and a label's ``(value, code)`` is a payload the join only carries.

Each side (predictions waiting, labels waiting, joined keys remembered) is an array of entries
in arrival order, which is its clock order: expiry and eviction take from a head index, and an
entry matched in the middle leaves a dead one that compaction removes. An event id is stored
once, in a byte arena (two bytes of length, then the bytes). One Robin Hood hash table indexes
the three sides by (model, event id): a tag byte per slot spares most probes a look at an entry,
and a match compares the bytes in full. A prediction entry holds its first version; further
versions are chained in a pool. Kernels allocate nothing: when an array is full, a kernel stops
before the row and Python grows or compacts the array.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numba as nb
import numpy as np

from driftwire.detectors.kernels import borrow
from driftwire.detectors.numba_cache import tolerate_unreadable_entries
from driftwire.detectors.window import _pack, _unpack
from driftwire.stream.join.store import OUTCOMES, join_bounds

tolerate_unreadable_entries()

_jit = nb.njit(cache=True, nogil=True)
# helpers are called from kernels only: without the wrappers that Python calls would need,
# they compile in about two thirds of the time
_helper = nb.njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
# Helpers on a row's common path that LLVM would not inline: each call would copy the table's
# ~100 words of array descriptors, several times a row.
_inline = nb.njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")

_I8, _I4, _U4, _F8 = np.int64, np.int32, np.uint32, np.float64


def _dtype(fields: list) -> np.dtype:
    # aligned: numba then types an array and a borrowed view of it alike (one compilation)
    return np.dtype(fields, align=True)


#: a batch of predictions; an event id is ``buf[id_start:id_start + id_len]``
PREDICTIONS = _dtype([("id_start", _I8), ("id_len", _I8), ("model", _I8), ("version", _I8), ("value", _F8),
                      ("code", _I8), ("score", _F8), ("time", _F8), ("message", _I8)])
#: a batch of labels
LABELS = _dtype([("id_start", _I8), ("id_len", _I8), ("model", _I8), ("value", _F8), ("code", _I8),
                 ("time", _F8), ("offset", _I8), ("message", _I8)])
#: a joined pair (:class:`~.store.Pair`); its event id is ``ids[id_at:id_at + id_len]`` of its :class:`Records`
PAIR = _dtype([("model", _I8), ("version", _I8), ("value", _F8), ("code", _I8), ("score", _F8),
               ("label_value", _F8), ("label_code", _I8), ("time", _F8), ("message", _I8), ("label_offset", _I8),
               ("id_at", _I8), ("id_len", _I8)])
_SIDE = [("version", _I8), ("value", _F8), ("code", _I8), ("score", _F8), ("time", _F8)]
#: two versions' predictions of one event (:class:`~.store.Shared`); ``labelled`` False is NO_LABEL
SHARED = _dtype([("model", _I8), ("id_at", _I8), ("id_len", _I8),
                 *((f"{which}_{name}", kind) for which in ("first", "second") for name, kind in _SIDE),
                 ("met", np.bool_), ("labelled", np.bool_), ("label_value", _F8), ("label_code", _I8),
                 ("message", _I8), ("label_offset", _I8)])

# Entries. A waiting prediction is the one that counts (56 bytes): its fields are ordered so
# that none needs padding. ``more`` chains the event's further versions in ``extra``.
_VERSION = [("time", _F8), ("score", _F8), ("value", _F8), ("code", _I8), ("version", _I4), ("more", _I4)]
_KEY = [("id_at", _U4), ("model", _I4)]
_WAITING = _dtype([("clock", _F8), *_VERSION, *_KEY])
_LABEL = _dtype([("clock", _F8), ("value", _F8), ("code", _I8), ("offset", _I8), *_KEY])
_JOINED = _dtype([("clock", _F8), ("label_value", _F8), ("label_code", _I8), ("label_offset", _I8),
                  *_VERSION, *_KEY])
_EXTRA = _dtype([("time", _F8), ("score", _F8), ("value", _F8), ("code", _I8), ("version", _I4), ("next", _I4)])
_META = _dtype([("prediction_clock", _F8), ("label_clock", _F8), ("ttl", _F8), ("max_pending", _I8),
                ("seed", np.uint64), ("keys", _I8), ("crowded", _I8),
                ("x_free", _I8), ("x_used", _I8), ("x_live", _I8), ("ids_used", _I8), ("ids_dead", _I8),
                ("n_pairs", _I8), ("n_pair_ids", _I8), ("n_shared", _I8), ("n_shared_ids", _I8),
                ("need_bytes", _I8), ("need_pairs", _I8), ("need_shared", _I8)])

# Constants passed to kernels' helpers are numpy integers: a Python int would be typed as a
# literal, and numba would compile the helper once per value.
PRED, LABEL, JOINED = np.int64(0), np.int64(1), np.int64(2)
_SIDES = ("preds", "labels", "joined")
HEAD, TAIL, LIVE = 0, 1, 2
_NONE = np.int64(-1)  # the end of a version chain; no free record
_INLINE = np.int64(-2)  # a chain cursor on the version an entry holds itself
_UNCOUNTED = np.int64(-1)  # an outcome not counted (a joined key forgotten)
# what a row's records are: pairs, Shared records; a Shared record's kind
_TO_PAIRS, _TO_SHARED = np.int64(1), np.int64(2)
_MET, _LABELLED = np.int64(1), np.int64(2)
_DEAD = np.uint32(0xFFFFFFFF)  # id_at of an entry that left
_EMPTY = -1
_MAX_ID = 0xFFFF
#: a probe this long makes the hash table grow; random hashes at load 0.8 nearly never reach it
_CROWDED = 48
_JOINED_N, _DUP_PREDICTION, _DUP_LABEL, _PRED_EXPIRED, _LABEL_EXPIRED, _PRED_EVICTED, _LABEL_EVICTED = (
    np.int64(OUTCOMES.index(o)) for o in ("joined", "duplicate_prediction", "duplicate_label",
                                          "prediction_expired", "label_expired", "prediction_evicted",
                                          "label_evicted"))
#: entries an array starts with (and grows by at least); an id arena starts with 64 bytes each
_MIN = 64
#: a side or the arena is compacted once an eighth of it is dead (each compaction moves at most
#: 7 entries per one freed; it is a sequential pass, cheap beside the memory a larger share holds)
_DEAD_SHARE = 8
STATE_FORMAT = 1


class _Table(NamedTuple):
    meta: np.ndarray  # one _META record
    sides: np.ndarray  # [3 * side + HEAD | TAIL | LIVE]
    counts: np.ndarray  # per outcome, OUTCOMES' order
    refs: np.ndarray  # slot -> entry index * 4 + side, or _EMPTY
    ctl: np.ndarray  # slot -> (probe distance + 1) << 8 | tag; 0: empty
    ids: np.ndarray
    preds: np.ndarray
    labels: np.ndarray
    joined: np.ndarray
    extra: np.ndarray
    pairs: np.ndarray
    pair_ids: np.ndarray
    shared: np.ndarray
    shared_ids: np.ndarray


class _Version(NamedTuple):
    version: int
    value: float
    code: int
    score: float
    time: float


class _Label(NamedTuple):
    value: float
    code: int
    offset: int


class _Event(NamedTuple):
    """The row that completes records: where its id went in the outputs' arenas."""
    model: int
    message: int
    pair_id: int
    shared_id: int
    id_len: int


_NO_LABEL = _Label(math.nan, -1, -1)


@_helper
def _borrowed(t):
    """The table as views that hold no reference: numba counts references to each array of a
    tuple passed to a function it does not inline, on every call, which would cost more than
    the join's work. The kernels use them only while their caller holds the table."""
    return _Table(borrow(t.meta), borrow(t.sides), borrow(t.counts), borrow(t.refs), borrow(t.ctl), borrow(t.ids),
                  borrow(t.preds), borrow(t.labels), borrow(t.joined), borrow(t.extra), borrow(t.pairs),
                  borrow(t.pair_ids), borrow(t.shared), borrow(t.shared_ids))


# -- hashing ------------------------------------------------------------------------------
_P1, _P2, _P3, _P4, _P5 = (np.uint64(p) for p in (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                                                  0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5))
_S29, _S32, _S33, _S56 = (np.uint64(s) for s in (29, 32, 33, 56))


@_helper
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@_helper
def _hash(b, start, n, model, seed):
    """64 bits of (model, b[start:start+n]), in xxHash64's manner."""
    h = seed ^ (np.uint64(model) * _P3) ^ (np.uint64(n) * _P5)
    p, end = start, start + n
    while p + 8 <= end:
        w = np.uint64(0)
        for k in range(8):
            w |= np.uint64(b[p + k]) << np.uint64(8 * k)
        h ^= _rotl(w * _P2, 31) * _P1
        h = _rotl(h, 27) * _P1 + _P4
        p += 8
    while p < end:
        h ^= np.uint64(b[p]) * _P5
        h = _rotl(h, 11) * _P1
        p += 1
    h ^= h >> _S33
    h *= _P2
    h ^= h >> _S29
    h *= _P3
    return h ^ (h >> _S32)


# -- entries ------------------------------------------------------------------------------
@_helper
def _key(t, ref):
    """(model, id_at) of the entry ``ref``."""
    side, at = ref & 3, ref >> 2
    if side == PRED:
        return np.int64(t.preds[at].model), np.int64(t.preds[at].id_at)
    if side == LABEL:
        return np.int64(t.labels[at].model), np.int64(t.labels[at].id_at)
    return np.int64(t.joined[at].model), np.int64(t.joined[at].id_at)


@_helper
def _alive(t, side, at):
    if side == PRED:
        return t.preds[at].id_at != _DEAD
    if side == LABEL:
        return t.labels[at].id_at != _DEAD
    return t.joined[at].id_at != _DEAD


@_helper
def _kill(t, side, at):
    if side == PRED:
        t.preds[at].id_at = _DEAD
    elif side == LABEL:
        t.labels[at].id_at = _DEAD
    else:
        t.joined[at].id_at = _DEAD
    t.sides[3 * side + LIVE] -= 1


@_helper
def _clock(t, side, at):
    if side == PRED:
        return t.preds[at].clock
    if side == LABEL:
        return t.labels[at].clock
    return t.joined[at].clock


@_helper
def _id_len(ids, at):
    return np.int64(ids[at]) | (np.int64(ids[at + 1]) << 8)


@_helper
def _copy(src, at, dest, to, n):
    # a loop: numba compiles a slice assignment into far more code
    for k in range(n):
        dest[to + k] = src[at + k]


@_helper
def _store_id(t, m, b, start, n):
    at = m.ids_used
    t.ids[at] = n & 0xFF
    t.ids[at + 1] = n >> 8
    _copy(b, start, t.ids, at + 2, n)
    m.ids_used = at + 2 + n
    return at


@_helper
def _same(t, ref, b, start, n, model):
    entry_model, at = _key(t, ref)
    if entry_model != model or _id_len(t.ids, at) != n:
        return False
    for k in range(n):
        if t.ids[at + 2 + k] != b[start + k]:
            return False
    return True


# -- the hash table -------------------------------------------------------------------------
@_helper
def _find(t, h, b, start, n, model):
    """The slot of (model, b[start:start+n]), or -1."""
    mask = t.refs.shape[0] - 1
    i = np.int64(h & np.uint64(mask))
    tag = np.int64(h >> _S56)
    d = 1
    while True:
        c = np.int64(t.ctl[i])
        if (c >> 8) < d:  # empty, or an entry nearer its home than the key would be
            return -1
        if (c & 0xFF) == tag and _same(t, np.int64(t.refs[i]), b, start, n, model):
            return i
        i = (i + 1) & mask
        d += 1


@_helper
def _place(refs, ctl, m, h, ref):
    mask = refs.shape[0] - 1
    i = np.int64(h & np.uint64(mask))
    tag = np.int64(h >> _S56)
    d = 1
    while True:
        c = np.int64(ctl[i])
        if c == 0:
            refs[i] = ref
            ctl[i] = (d << 8) | tag
            return
        if (c >> 8) < d:  # Robin Hood: the entry nearer its home moves on
            other = np.int64(refs[i])
            refs[i] = ref
            ctl[i] = (d << 8) | tag
            ref, tag, d = other, c & 0xFF, c >> 8
        i = (i + 1) & mask
        d += 1
        if d > _CROWDED:
            m.crowded = 1
            if d > 0xFF:
                raise OverflowError("join table: a hash probe beyond 255 slots")


@_helper
def _unslot(t, m, s):
    """Empty slot ``s``, shifting the entries after it back towards their homes."""
    mask = t.refs.shape[0] - 1
    j = (s + 1) & mask
    while (np.int64(t.ctl[j]) >> 8) > 1:
        t.refs[s] = t.refs[j]
        t.ctl[s] = t.ctl[j] - 256
        s = j
        j = (j + 1) & mask
    t.refs[s] = _EMPTY
    t.ctl[s] = 0
    m.keys -= 1


@_helper
def _slot_of(t, m, ref):
    model, at = _key(t, ref)
    h = _hash(t.ids, at + 2, _id_len(t.ids, at), model, m.seed)
    mask = t.refs.shape[0] - 1
    i = np.int64(h & np.uint64(mask))
    while t.refs[i] != ref:
        i = (i + 1) & mask
    return i


# -- versions -----------------------------------------------------------------------------
@_helper
def _version(t, side, at, c):
    if c != _INLINE:
        e = t.extra[c]
        return _Version(np.int64(e.version), e.value, np.int64(e.code), e.score, e.time)
    if side == PRED:
        p = t.preds[at]
        return _Version(np.int64(p.version), p.value, np.int64(p.code), p.score, p.time)
    j = t.joined[at]
    return _Version(np.int64(j.version), j.value, np.int64(j.code), j.score, j.time)


@_helper
def _next(t, side, at, c):
    if c != _INLINE:
        return np.int64(t.extra[c].next)
    if side == PRED:
        return np.int64(t.preds[at].more)
    return np.int64(t.joined[at].more)


@_helper
def _n_versions(t, side, at):
    n, c = 0, _INLINE
    while c != _NONE:
        n += 1
        c = _next(t, side, at, c)
    return n


@_helper
def _holds(t, side, at, version):
    c = _INLINE
    while c != _NONE:
        if _version(t, side, at, c).version == version:
            return True
        c = _next(t, side, at, c)
    return False


@_helper
def _row_version(r):
    return _Version(r.version, r.value, r.code, r.score, r.time)


@_helper
def _append(t, m, side, at, r):
    """Chain the version of prediction row ``r`` after the entry's last."""
    x = m.x_free
    if x != _NONE:
        m.x_free = t.extra[x].next
    else:
        x = m.x_used
        m.x_used = x + 1
    m.x_live += 1
    e = t.extra[x]
    e.time, e.score, e.value, e.code, e.version, e.next = r.time, r.score, r.value, r.code, r.version, _NONE
    c = _INLINE
    while _next(t, side, at, c) != _NONE:
        c = _next(t, side, at, c)
    if c != _INLINE:
        t.extra[c].next = x
    elif side == PRED:
        t.preds[at].more = x
    else:
        t.joined[at].more = x


@_helper
def _free_chain(t, m, x):
    while x != _NONE:
        e = t.extra[x]
        following = np.int64(e.next)
        e.next = m.x_free
        m.x_free = x
        m.x_live -= 1
        x = following


# -- leaving --------------------------------------------------------------------------------
@_helper
def _drop(t, m, side, at):
    """Entry ``at`` of ``side`` leaves the table (expired, evicted, forgotten)."""
    ref = at * 4 + side
    _unslot(t, m, _slot_of(t, m, ref))
    m.ids_dead += _id_len(t.ids, _key(t, ref)[1]) + 2
    if side != LABEL:
        _free_chain(t, m, _next(t, side, at, _INLINE))
    _kill(t, side, at)


@_helper
def _leaves(t, m, side, at, outcome):
    if outcome >= 0:
        t.counts[outcome] += 1 if side == LABEL else _n_versions(t, side, at)
    _drop(t, m, side, at)


@_inline
def _expire(t, m, side, horizon, outcome):
    """Entries of ``side`` with a clock below ``horizon`` leave, counted as ``outcome`` (if >= 0)."""
    s = t.sides
    while s[3 * side + HEAD] < s[3 * side + TAIL]:
        at = s[3 * side + HEAD]
        if _alive(t, side, at):
            if _clock(t, side, at) >= horizon:  # a NaN horizon expires all, as JoinStore's does
                return
            _leaves(t, m, side, at, outcome)
        s[3 * side + HEAD] = at + 1


@_inline
def _bound(t, m, side, outcome):
    s = t.sides
    while s[3 * side + LIVE] > m.max_pending:
        at = s[3 * side + HEAD]
        if _alive(t, side, at):
            _leaves(t, m, side, at, outcome)
        s[3 * side + HEAD] = at + 1


@_inline
def _forget(t, m):
    low = m.label_clock if m.label_clock < m.prediction_clock else m.prediction_clock
    _expire(t, m, JOINED, low - m.ttl, _UNCOUNTED)


# -- records out ------------------------------------------------------------------------------
@_inline
def _event(t, m, b, r, records):
    """The row's id copied to the arenas of the records it makes (_TO_PAIRS | _TO_SHARED)."""
    n = r.id_len
    pair_id = shared_id = -1
    if records & _TO_PAIRS:
        pair_id = m.n_pair_ids
        _copy(b, r.id_start, t.pair_ids, pair_id, n)
        m.n_pair_ids = pair_id + n
    if records & _TO_SHARED:
        shared_id = m.n_shared_ids
        _copy(b, r.id_start, t.shared_ids, shared_id, n)
        m.n_shared_ids = shared_id + n
    return _Event(r.model, r.message, pair_id, shared_id, n)


@_helper
def _pair(t, m, ev, v, lab):
    p = t.pairs[m.n_pairs]
    m.n_pairs += 1
    p.model, p.version, p.value, p.code, p.score = ev.model, v.version, v.value, v.code, v.score
    p.label_value, p.label_code, p.time, p.message, p.label_offset = lab.value, lab.code, v.time, ev.message, lab.offset
    p.id_at, p.id_len = ev.pair_id, ev.id_len
    t.counts[_JOINED_N] += 1


@_helper
def _shared(t, m, ev, a, b, kind, lab):
    """A Shared record of versions ``a`` and ``b``; ``kind``: _MET, _LABELLED or both."""
    s = t.shared[m.n_shared]
    m.n_shared += 1
    s.model, s.id_at, s.id_len = ev.model, ev.shared_id, ev.id_len
    s.first_version, s.first_value, s.first_code, s.first_score, s.first_time = a
    s.second_version, s.second_value, s.second_code, s.second_score, s.second_time = b
    s.met, s.labelled = (kind & _MET) != 0, (kind & _LABELLED) != 0
    s.label_value, s.label_code, s.message, s.label_offset = lab.value, lab.code, ev.message, lab.offset


@_inline
def _fits(t, m, n, pairs, shared):
    """Whether every array has room for what one row may add; if not, what it needs is noted."""
    s = t.sides
    ok = (s[3 * PRED + TAIL] < t.preds.shape[0] and s[3 * LABEL + TAIL] < t.labels.shape[0]
          and s[3 * JOINED + TAIL] < t.joined.shape[0] and (m.x_free != _NONE or m.x_used < t.extra.shape[0])
          and m.ids_used + n + 2 <= t.ids.shape[0] and (m.keys + 1) * 5 <= t.refs.shape[0] * 4 and m.crowded == 0
          and m.n_pairs + pairs <= t.pairs.shape[0] and m.n_pair_ids + n <= t.pair_ids.shape[0]
          and m.n_shared + shared <= t.shared.shape[0] and m.n_shared_ids + n <= t.shared_ids.shape[0])
    if not ok:
        m.need_bytes, m.need_pairs, m.need_shared = n + 2, pairs, shared
    return ok


@_helper
def _join_entry(t, m, model, id_at, lab, slot):
    """A joined entry (the key of ``slot`` now), remembered until the clocks pass it."""
    at = t.sides[3 * JOINED + TAIL]
    t.sides[3 * JOINED + TAIL] = at + 1
    t.sides[3 * JOINED + LIVE] += 1
    e = t.joined[at]
    e.clock = m.label_clock if m.label_clock < m.prediction_clock else m.prediction_clock
    e.label_value, e.label_code, e.label_offset = lab.value, lab.code, lab.offset
    e.model, e.id_at = model, id_at
    t.refs[slot] = at * 4 + JOINED
    return at


# -- predictions ----------------------------------------------------------------------------
@_inline
def _wait_prediction(t, m, b, r, h):
    at = t.sides[3 * PRED + TAIL]
    t.sides[3 * PRED + TAIL] = at + 1
    t.sides[3 * PRED + LIVE] += 1
    e = t.preds[at]
    e.clock, e.time, e.score, e.value, e.code = m.prediction_clock, r.time, r.score, r.value, r.code
    e.version, e.more, e.model = r.version, _NONE, r.model
    e.id_at = _store_id(t, m, b, r.id_start, r.id_len)
    _place(t.refs, t.ctl, m, h, at * 4 + PRED)
    m.keys += 1
    _bound(t, m, PRED, _PRED_EVICTED)


@_inline
def _meet_label(t, m, b, r, slot):
    label = t.labels[t.refs[slot] >> 2]
    lab = _Label(label.value, np.int64(label.code), np.int64(label.offset))
    _pair(t, m, _event(t, m, b, r, _TO_PAIRS), _row_version(r), lab)
    at = _join_entry(t, m, label.model, label.id_at, lab, slot)
    e = t.joined[at]
    e.time, e.score, e.value, e.code, e.version, e.more = r.time, r.score, r.value, r.code, r.version, _NONE
    label.id_at = _DEAD
    t.sides[3 * LABEL + LIVE] -= 1
    _bound(t, m, JOINED, _UNCOUNTED)


@_helper
def _late_version(t, m, b, r, at):
    """A version new to a joined event: its pair, and a Shared record with each earlier one."""
    j = t.joined[at]
    lab = _Label(j.label_value, np.int64(j.label_code), np.int64(j.label_offset))
    ev = _event(t, m, b, r, _TO_PAIRS | _TO_SHARED)
    v = _row_version(r)
    _pair(t, m, ev, v, lab)
    c = _INLINE
    while c != _NONE:
        _shared(t, m, ev, _version(t, JOINED, at, c), v, _MET | _LABELLED, lab)
        c = _next(t, JOINED, at, c)
    _append(t, m, JOINED, at, r)


@_helper
def _more_version(t, m, b, r, at):
    ev = _event(t, m, b, r, _TO_SHARED)
    v = _row_version(r)
    c = _INLINE
    while c != _NONE:
        _shared(t, m, ev, _version(t, PRED, at, c), v, _MET, _NO_LABEL)
        c = _next(t, PRED, at, c)
    _append(t, m, PRED, at, r)


@_jit
def _add_predictions(t, b, rows, start):
    """JoinStore.add_prediction of ``rows[start:]`` in order; returns where it stopped: len(rows),
    or the row that needs room first (it can be given again: its clock has moved already)."""
    t, b = _borrowed(t), borrow(b)
    m = t.meta[0]
    for i in range(start, rows.shape[0]):
        r = rows[i]
        if r.time > m.prediction_clock:  # also refuses NaN
            m.prediction_clock = r.time
            _expire(t, m, LABEL, r.time - m.ttl, _LABEL_EXPIRED)
            _forget(t, m)
        h = _hash(b, r.id_start, r.id_len, r.model, m.seed)
        slot = _find(t, h, b, r.id_start, r.id_len, r.model)
        ref = np.int64(t.refs[slot]) if slot >= 0 else np.int64(-1)
        side, at = ref & 3, ref >> 2
        held = _n_versions(t, side, at) if slot >= 0 and side != LABEL else 0
        if not _fits(t, m, r.id_len, 1, held):
            return i
        if slot < 0:
            _wait_prediction(t, m, b, r, h)
        elif side == LABEL:
            _meet_label(t, m, b, r, slot)
        elif _holds(t, side, at, r.version):
            t.counts[_DUP_PREDICTION] += 1
        elif side == JOINED:
            _late_version(t, m, b, r, at)
        else:
            _more_version(t, m, b, r, at)
    return rows.shape[0]


# -- labels ---------------------------------------------------------------------------------
@_inline
def _wait_label(t, m, b, r, h):
    at = t.sides[3 * LABEL + TAIL]
    t.sides[3 * LABEL + TAIL] = at + 1
    t.sides[3 * LABEL + LIVE] += 1
    e = t.labels[at]
    e.clock, e.value, e.code, e.offset, e.model = m.label_clock, r.value, r.code, r.offset, r.model
    e.id_at = _store_id(t, m, b, r.id_start, r.id_len)
    _place(t.refs, t.ctl, m, h, at * 4 + LABEL)
    m.keys += 1
    _bound(t, m, LABEL, _LABEL_EVICTED)


@_inline
def _label_meets(t, m, b, r, slot, k):
    """The label of ``k`` waiting versions: their pairs, a Shared record per two of them."""
    at = t.refs[slot] >> 2
    lab = _Label(r.value, r.code, r.offset)
    ev = _event(t, m, b, r, _TO_PAIRS | _TO_SHARED if k > 1 else _TO_PAIRS)
    c = _INLINE
    while c != _NONE:
        _pair(t, m, ev, _version(t, PRED, at, c), lab)
        later = _next(t, PRED, at, c)
        while later != _NONE:
            _shared(t, m, ev, _version(t, PRED, at, c), _version(t, PRED, at, later), _LABELLED, lab)
            later = _next(t, PRED, at, later)
        c = _next(t, PRED, at, c)
    p = t.preds[at]
    j = t.joined[_join_entry(t, m, p.model, p.id_at, lab, slot)]
    j.time, j.score, j.value, j.code, j.version, j.more = p.time, p.score, p.value, p.code, p.version, p.more
    p.id_at = _DEAD
    t.sides[3 * PRED + LIVE] -= 1
    _bound(t, m, JOINED, _UNCOUNTED)


@_jit
def _add_labels(t, b, rows, start):
    """JoinStore.add_label of ``rows[start:]`` in order; returns as :func:`_add_predictions`."""
    t, b = _borrowed(t), borrow(b)
    m = t.meta[0]
    for i in range(start, rows.shape[0]):
        r = rows[i]
        if r.time > m.label_clock:
            m.label_clock = r.time
            _expire(t, m, PRED, r.time - m.ttl, _PRED_EXPIRED)
            _forget(t, m)
        h = _hash(b, r.id_start, r.id_len, r.model, m.seed)
        slot = _find(t, h, b, r.id_start, r.id_len, r.model)
        ref = np.int64(t.refs[slot]) if slot >= 0 else np.int64(-1)
        waiting = slot >= 0 and (ref & 3) == PRED
        k = _n_versions(t, PRED, ref >> 2) if waiting else 0
        if not _fits(t, m, r.id_len, k, k * (k - 1) // 2):
            return i
        if slot < 0:
            _wait_label(t, m, b, r, h)
        elif waiting:
            _label_meets(t, m, b, r, slot, k)
        else:
            t.counts[_DUP_LABEL] += 1
    return rows.shape[0]


# -- upkeep ---------------------------------------------------------------------------------
@_jit
def _compact(t, side, src, dest, moved):
    """Move the live entries of ``side`` (``src``, its array in ``t``) to the front of ``dest``
    (``src`` itself or a new array), in order; ``moved``: room for where each went."""
    t, src, dest, moved = _borrowed(t), borrow(src), borrow(dest), borrow(moved)
    head, tail = t.sides[3 * side + HEAD], t.sides[3 * side + TAIL]
    j = 0
    for i in range(head, tail):
        if src[i].id_at != _DEAD:
            dest[j] = src[i]
            moved[i - head] = j
            j += 1
    # one pass over the slots, not a probe per entry moved: most of the entries of a side are
    # moved, and a probe is a cache miss
    for s in range(t.refs.shape[0]):
        ref = np.int64(t.refs[s])
        if (ref & 3) == side:  # _EMPTY & 3 is no side
            t.refs[s] = moved[(ref >> 2) - head] * 4 + side
    t.sides[3 * side + HEAD] = 0
    t.sides[3 * side + TAIL] = j


@_jit
def _rehash(t):
    """Index every live entry in ``t.refs``, ``t.ctl`` (new, empty)."""
    t = _borrowed(t)
    m = t.meta[0]
    m.crowded = 0
    m.keys = 0
    for side in range(3):
        for at in range(t.sides[3 * side + HEAD], t.sides[3 * side + TAIL]):
            if _alive(t, side, at):
                model, id_at = _key(t, at * 4 + side)
                h = _hash(t.ids, id_at + 2, _id_len(t.ids, id_at), model, m.seed)
                _place(t.refs, t.ctl, m, h, at * 4 + side)
                m.keys += 1


@_helper
def _move_ids(entries, lo, hi, src, dest, pos):
    for i in range(lo, hi):
        e = entries[i]
        if e.id_at != _DEAD:
            n = _id_len(src, e.id_at) + 2
            _copy(src, e.id_at, dest, pos, n)
            e.id_at = pos
            pos += n
    return pos


@_jit
def _compact_ids(t, dest):
    """Copy the ids of live entries to the front of ``dest`` (a new arena)."""
    t, dest = _borrowed(t), borrow(dest)
    m, s = t.meta[0], t.sides
    pos = _move_ids(t.preds, s[3 * PRED + HEAD], s[3 * PRED + TAIL], t.ids, dest, 0)
    pos = _move_ids(t.labels, s[3 * LABEL + HEAD], s[3 * LABEL + TAIL], t.ids, dest, pos)
    m.ids_used = _move_ids(t.joined, s[3 * JOINED + HEAD], s[3 * JOINED + TAIL], t.ids, dest, pos)
    m.ids_dead = 0


@_helper
def _move_chains(entries, lo, hi, src, dest, n):
    for i in range(lo, hi):
        e = entries[i]
        if e.id_at == _DEAD or e.more == _NONE:
            continue
        x = np.int64(e.more)
        e.more = n
        while x != _NONE:
            dest[n] = src[x]
            x = np.int64(src[x].next)
            dest[n].next = n + 1 if x != _NONE else _NONE
            n += 1
    return n


@_jit
def _compact_extra(t, dest):
    t, dest = _borrowed(t), borrow(dest)
    m, s = t.meta[0], t.sides
    n = _move_chains(t.preds, s[3 * PRED + HEAD], s[3 * PRED + TAIL], t.extra, dest, 0)
    n = _move_chains(t.joined, s[3 * JOINED + HEAD], s[3 * JOINED + TAIL], t.extra, dest, n)
    m.x_used = m.x_live = n
    m.x_free = _NONE


# -- Python side ------------------------------------------------------------------------------
class Records(NamedTuple):
    """Rows taken from a table (:data:`PAIR` or :data:`SHARED`) and the bytes their ids are in."""

    rows: np.ndarray
    ids: bytes

    def event_id(self, i: int) -> str:
        at = int(self.rows["id_at"][i])
        return self.ids[at:at + int(self.rows["id_len"][i])].decode("utf-8", "surrogatepass")


class JoinTable:
    """Predictions waiting for labels and labels waiting for predictions, of one partition; the
    same outcomes as :class:`~.store.JoinStore` given the same events."""

    def __init__(self, ttl: float, max_pending: int):
        self.ttl, self.max_pending = join_bounds(ttl, max_pending)
        #: whether the partition's predictions are taken (as JoinStore.active)
        self.active = True
        self._t = _empty(self.ttl, self.max_pending)

    # -- input -----------------------------------------------------------------------------
    def add_predictions(self, buf: np.ndarray, rows: np.ndarray) -> None:
        """JoinStore.add_prediction of each row (a :data:`PREDICTIONS` array) in order."""
        _check(buf, rows, PREDICTIONS)
        self._run(_add_predictions, buf, rows)

    def add_labels(self, buf: np.ndarray, rows: np.ndarray) -> None:
        """JoinStore.add_label of each row (a :data:`LABELS` array) in order."""
        _check(buf, rows, LABELS)
        self._run(_add_labels, buf, rows)

    def _run(self, kernel, buf, rows) -> None:
        i = 0
        while (i := kernel(self._t, buf, rows, i)) < len(rows):
            self._make_room()

    # -- output ----------------------------------------------------------------------------
    def take_pairs(self) -> Records:
        """The pairs joined since the last call, in the order they were completed."""
        return self._take("pairs", "pair_ids", "n_pairs", "n_pair_ids")

    def take_shared(self) -> Records:
        """The Shared records made since the last call, in order."""
        return self._take("shared", "shared_ids", "n_shared", "n_shared_ids")

    def _take(self, rows: str, ids: str, n_rows: str, n_ids: str) -> Records:
        t = self._t
        m = t.meta[0]
        n, n_bytes = int(m[n_rows]), int(m[n_ids])
        taken = Records(_copied(getattr(t, rows)[:n]), getattr(t, ids)[:n_bytes].tobytes())
        m[n_rows] = m[n_ids] = 0
        if 8 * n < len(getattr(t, rows)) > 16 * _MIN:  # a burst gone: halve, one take at a time
            self._t = t._replace(**{rows: _copied(getattr(t, rows)[:len(getattr(t, rows)) // 2]),
                                    ids: getattr(t, ids)[:len(getattr(t, ids)) // 2].copy()})
        return taken

    def take_counts(self) -> dict[str, int]:
        """Events per outcome (:data:`~.store.OUTCOMES`) since the last call, as JoinStore's."""
        counts = self._t.counts
        taken = {outcome: int(n) for outcome, n in zip(OUTCOMES, counts) if n}
        counts[:] = 0
        return taken

    @property
    def pending_predictions(self) -> int:
        """Events with at least one prediction waiting for its label."""
        return int(self._t.sides[3 * PRED + LIVE])

    @property
    def pending_labels(self) -> int:
        return int(self._t.sides[3 * LABEL + LIVE])

    @property
    def remembered(self) -> int:
        """Joined events remembered (for duplicates, and for versions that come after the label)."""
        return int(self._t.sides[3 * JOINED + LIVE])

    @property
    def prediction_clock(self) -> float:
        return float(self._t.meta[0]["prediction_clock"])

    @property
    def label_clock(self) -> float:
        return float(self._t.meta[0]["label_clock"])

    def memory(self) -> dict[str, int]:
        """Bytes of each array the table holds (:data:`PAIR` and :data:`SHARED` buffers included)."""
        return {name: a.nbytes for name, a in zip(_Table._fields, self._t)}

    # -- room ------------------------------------------------------------------------------
    def _make_room(self) -> None:
        """Room for what the row a kernel stopped at needs (and one entry on each side)."""
        t = self._t
        m = t.meta[0]
        for side, name in enumerate(_SIDES):
            if t.sides[3 * side + TAIL] >= len(getattr(t, name)):
                t = _side_room(t, side, name)
        if m["x_free"] == _NONE and m["x_used"] >= len(t.extra):
            t = t._replace(extra=_grown(t.extra, 2 * len(t.extra)))
        if m["ids_used"] + m["need_bytes"] > len(t.ids):
            t = _ids_room(t, int(m["need_bytes"]))
        self._t = _outputs_room(_index_room(t))

    # -- checkpoint ------------------------------------------------------------------------
    def get_state(self) -> dict:
        """Everything the table holds, as JSON-ready data; :meth:`set_state` continues exactly."""
        t = self._t
        for side, name in enumerate(_SIDES):
            _compact(t, side, getattr(t, name), getattr(t, name), _moves(t, side))
        ids = np.empty(len(t.ids), np.uint8)
        _compact_ids(t, ids)
        extra = np.empty(len(t.extra), _EXTRA)
        _compact_extra(t, extra)
        self._t = t = t._replace(ids=ids, extra=extra)
        m, live = t.meta[0], t.sides[LIVE::3]
        return {
            "format": STATE_FORMAT, "active": self.active,
            "clocks": _pack(np.array([m["prediction_clock"], m["label_clock"]])),
            **{name: _pack_rows(getattr(t, side)[:n])
               for name, side, n in zip(("predictions", "labels", "joined"), _SIDES, live)},
            "extra": _pack_rows(t.extra[:m["x_used"]]),
            "ids": _pack(t.ids[:m["ids_used"]]),
        }

    def set_state(self, state: dict) -> None:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a join table state (format {state.get('format')!r})")
        self.active = state.get("active", True)
        self._load(_unpack(state["clocks"]), _unpack_rows(state["predictions"], _WAITING),
                   _unpack_rows(state["labels"], _LABEL), _unpack_rows(state["joined"], _JOINED),
                   _unpack_rows(state["extra"], _EXTRA), _unpack(state["ids"]))

    @classmethod
    def from_store_state(cls, state: dict, model_code, version_code, payload, *, ttl: float,
                         max_pending: int) -> JoinTable:
        """A table holding what a JoinStore's :meth:`~.store.JoinStore.get_state` holds:
        ``model_code(name)``, ``version_code(name)`` the codes, ``payload(prediction or label)`` its
        ``(value, code)`` (a joined version of an old checkpoint has only its name: ``payload(None)``)."""
        table = cls(ttl, max_pending)
        table.active = state.get("active", True)
        table._load(*_StoreState(model_code, version_code, payload).arrays(state))
        return table

    def _load(self, clocks, preds, labels, joined, extra, ids) -> None:
        t = _empty(self.ttl, self.max_pending)
        m = t.meta[0]
        m["prediction_clock"], m["label_clock"] = clocks
        arrays = {}
        for side, (name, rows) in enumerate(zip(_SIDES, (preds, labels, joined))):
            arrays[name] = _grown(rows, max(_MIN, len(rows) + len(rows) // 8 + 1))
            t.sides[3 * side:3 * side + 3] = (0, len(rows), len(rows))
        arrays["extra"] = _grown(extra, max(_MIN, 2 * len(extra)))
        arrays["ids"] = _grown(ids, len(ids) + len(ids) // 8 + 64 * _MIN)
        m["x_used"] = m["x_live"] = len(extra)
        m["ids_used"] = len(ids)
        keys = len(preds) + len(labels) + len(joined)
        self._t = _slots(t._replace(**arrays), 1 << ((keys + 1) * 5 // 4).bit_length())


def _empty(ttl: float, max_pending: int) -> _Table:
    meta = np.zeros(1, _META)
    m = meta[0]
    m["prediction_clock"] = m["label_clock"] = -math.inf
    m["ttl"], m["max_pending"], m["x_free"] = ttl, max_pending, _NONE
    # a seed of its own: ids chosen to collide would have to be chosen per table
    m["seed"] = int.from_bytes(os.urandom(8), "little")
    slots, n = 1 << (_MIN - 1).bit_length(), 64 * _MIN
    return _Table(meta, np.zeros(9, np.int64), np.zeros(len(OUTCOMES), np.int64),
                  np.full(slots, _EMPTY, np.int32), np.zeros(slots, np.uint16), np.empty(n, np.uint8),
                  np.empty(_MIN, _WAITING), np.empty(_MIN, _LABEL), np.empty(_MIN, _JOINED), np.empty(_MIN, _EXTRA),
                  np.empty(_MIN, PAIR), np.empty(n, np.uint8), np.empty(_MIN, SHARED), np.empty(n, np.uint8))


def _slots(t: _Table, size: int) -> _Table:
    t = t._replace(refs=np.full(size, _EMPTY, np.int32), ctl=np.zeros(size, np.uint16))
    _rehash(t)
    return t


def _index_room(t: _Table) -> _Table:
    """A hash table loaded at most 0.8 (at least 0.1 once it is large), with no long probe."""
    keys, size = int(t.meta[0]["keys"]), len(t.refs)
    if 10 * keys < size > 64 * _MIN:  # a burst gone
        size //= 4
    while (keys + 1) * 5 > size * 4:
        size *= 2
    if size != len(t.refs):
        t = _slots(t, size)
    while t.meta[0]["crowded"]:
        t = _slots(t, 2 * len(t.refs))
    return t


def _outputs_room(t: _Table) -> _Table:
    m = t.meta[0]
    for rows, ids, n_rows, n_ids, need in (("pairs", "pair_ids", "n_pairs", "n_pair_ids", "need_pairs"),
                                           ("shared", "shared_ids", "n_shared", "n_shared_ids", "need_shared")):
        if m[n_rows] + m[need] > len(getattr(t, rows)):
            t = t._replace(**{rows: _grown(getattr(t, rows), 2 * (m[n_rows] + m[need]))})
        if m[n_ids] + m["need_bytes"] > len(getattr(t, ids)):
            t = t._replace(**{ids: _grown(getattr(t, ids), 2 * (m[n_ids] + m["need_bytes"]))})
    return t


def _side_room(t: _Table, side: int, name: str) -> _Table:
    """Room at the tail of a side: compacted when enough of it is dead, else grown by an eighth
    (positions kept, so the hash table needs no change)."""
    a = getattr(t, name)
    cap, live = len(a), int(t.sides[3 * side + LIVE])
    if cap - live < cap // _DEAD_SHARE or cap - live == 0:
        return t._replace(**{name: _grown(a, cap + max(cap // 8, _MIN))})
    # a side that shrank much (a burst gone) is given back most of its memory
    dest = a if live >= cap // 4 or cap <= 4 * _MIN else np.empty(max(_MIN, 2 * live), a.dtype)
    _compact(t, side, a, dest, _moves(t, side))
    return t._replace(**{name: dest})


def _ids_room(t: _Table, need: int) -> _Table:
    """Room for ``need`` bytes in the id arena: compacted into a new one when enough of it is
    dead, else grown by an eighth."""
    m = t.meta[0]
    cap, used, dead = len(t.ids), int(m["ids_used"]), int(m["ids_dead"])
    target = used - dead + need
    if dead < cap // _DEAD_SHARE:
        size = max(cap + cap // 8, used + need + cap // 8)
    elif target <= cap // 4 and cap > 256 * _MIN:
        size = 2 * target
    else:
        size = max(cap, target + cap // 8)
    if size > int(_DEAD):
        raise MemoryError(f"join table: {size} bytes of event ids (at most {int(_DEAD)})")
    if dead < cap // _DEAD_SHARE:
        return t._replace(ids=_grown(t.ids, size))
    ids = np.empty(size, np.uint8)
    _compact_ids(t, ids)
    return t._replace(ids=ids)


def _moves(t: _Table, side: int) -> np.ndarray:
    return np.empty(max(1, int(t.sides[3 * side + TAIL] - t.sides[3 * side + HEAD])), np.int32)


def _copied(rows: np.ndarray) -> np.ndarray:
    """A copy of contiguous rows, as bytes (see :func:`_grown`)."""
    return rows.view(np.uint8).copy().view(rows.dtype)


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    b = np.empty(max(size, len(a)), dtype=a.dtype)
    # as bytes: numpy copies an aligned structured array field by field, about 9x slower
    b[:len(a)].view(np.uint8)[:] = a.view(np.uint8)
    return b


def _check(buf: np.ndarray, rows: np.ndarray, dtype: np.dtype) -> None:
    """Refuse what would make a kernel read or write out of bounds."""
    if rows.dtype != dtype or rows.ndim != 1 or not rows.flags.c_contiguous:
        raise TypeError(f"rows must be a 1-d contiguous array of dtype {dtype}")
    if buf.dtype != np.uint8 or buf.ndim != 1 or not buf.flags.c_contiguous:
        raise TypeError("buf must be a 1-d contiguous uint8 array")
    if not len(rows):
        return
    start, n = rows["id_start"], rows["id_len"]
    if start.min() < 0 or n.min() < 0 or n.max() > _MAX_ID or (start + n).max() > len(buf):
        raise ValueError(f"event id spans must lie in buf and be at most {_MAX_ID} bytes")
    for name in ("model", "version") if dtype == PREDICTIONS else ("model",):
        codes = rows[name]
        if codes.min() < -(2 ** 31) or codes.max() >= 2 ** 31:
            raise ValueError(f"{name} codes must fit in 32 bits")


def _pack_rows(rows: np.ndarray) -> dict:
    # by column: each compresses better than the interleaved records
    return {name: _pack(rows[name]) for name in rows.dtype.names}


def _unpack_rows(packed: dict, dtype: np.dtype) -> np.ndarray:
    columns = {name: _unpack(packed[name]) for name in dtype.names}
    rows = np.empty(len(columns[dtype.names[0]]), dtype)
    for name, column in columns.items():
        rows[name] = column
    return rows


class _StoreState:
    """The arrays of a JoinStore checkpoint's entries, built entry by entry."""

    def __init__(self, model_code, version_code, payload):
        self.model_code, self.version_code, self.payload = model_code, version_code, payload
        self.ids = bytearray()
        self.extra: list[tuple] = []

    def arrays(self, state: dict) -> tuple:
        """(clocks, predictions, labels, joined, extra, ids), as :meth:`JoinTable._load` takes them."""
        preds = [(_clock_of(t), *self.versions(saved), *self.key(m, e)) for m, e, t, saved in state["predictions"]]
        labels = [(_clock_of(t), *self.payload(label), offset, *self.key(m, e))
                  for m, e, t, label, offset in state["labels"]]
        joined = [(_clock_of(t), *self.payload(label), offset, *self.versions(saved), *self.key(m, e))
                  for m, e, t, label, offset, saved in state["joined"]]
        return (np.array([_clock_of(c) for c in state["clocks"]]), np.array(preds, _WAITING),
                np.array(labels, _LABEL), np.array(joined, _JOINED), np.array(self.extra, _EXTRA),
                np.frombuffer(bytes(self.ids), np.uint8))

    def key(self, model: str, event_id: str) -> tuple[int, int]:
        """(id_at, model code), the id stored."""
        raw = event_id.encode("utf-8", "surrogatepass")
        if len(raw) > _MAX_ID:
            raise ValueError(f"event id of {len(raw)} bytes (at most {_MAX_ID})")
        at = len(self.ids)
        self.ids.extend(len(raw).to_bytes(2, "little") + raw)
        return at, self.model_code(model)

    def versions(self, saved: list) -> tuple:
        """The first version's fields and its ``more``; the others are chained in ``extra``."""
        chain = [_stored_version(v, self.version_code, self.payload) for v in saved]
        extra = self.extra
        more = len(extra) if len(chain) > 1 else _NONE
        for k, v in enumerate(chain[1:], start=2):
            extra.append((*v, len(extra) + 1 if k < len(chain) else _NONE))
        return (*chain[0], more)


def _clock_of(saved) -> float:
    return -math.inf if saved is None else float(saved)


def _stored_version(saved, version_code, payload) -> tuple:
    """(time, score, value, code, version) of a version a JoinStore checkpoint holds."""
    if isinstance(saved, str):
        saved = (saved, None, None, None)
    version, prediction, score, time = saved
    value, code = payload(prediction)
    return (math.nan if time is None else time, math.nan if score is None else score, value, code,
            version_code(version))


def id_spans(ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buf, id_start, id_len) of event ids, for batches built from Python strings."""
    raw = [i.encode("utf-8", "surrogatepass") for i in ids]
    lengths = np.fromiter(map(len, raw), np.int64, len(raw))
    starts = np.zeros(len(raw), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return np.frombuffer(b"".join(raw), np.uint8), starts, lengths


def warm_up() -> None:
    """Compile or load the kernels before the first batch waits on them."""
    table = JoinTable(ttl=1.0, max_pending=2)
    buf, starts, lengths = id_spans([f"e{i}" for i in range(4)])
    rows = np.zeros(8, PREDICTIONS)
    rows["id_start"], rows["id_len"] = np.repeat(starts, 2), np.repeat(lengths, 2)
    rows["version"], rows["time"] = [0, 1] * 4, np.arange(8.0)
    labels = np.zeros(4, LABELS)
    labels["id_start"], labels["id_len"], labels["time"] = starts[::-1], lengths[::-1], np.arange(4.0) + 1
    table.add_predictions(buf, rows)
    table.add_labels(buf, labels)
    table.add_predictions(buf, rows)
    table.set_state(table.get_state())
