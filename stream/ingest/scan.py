"""One numba pass over a whole batch of JSON events, for the form nearly every event has.

The scanner reads each message of a batch and either understands it completely (FAST: a valid
event of a strict subset of JSON whose values it can read exactly as Python would) or gives up
on it (SLOW: the router's per-message path takes it and raises the precise error or accepts the
unusual form). It never guesses: anything outside the subset is SLOW.

The FAST subset: one JSON object, keys plain ASCII without escapes; strings printable ASCII
without escapes; numbers in strict JSON grammar read exactly as Python reads them (integers below 2**53,
decimals of up to 19 significant digits: see :mod:`driftwire.stream.ingest.floats`); true,
false, null; a flat ``features`` object of such scalars; other keys only with scalar values;
no known key twice; ``timestamp`` a number or an RFC 3339 string of the common form.

For a FAST message the scanner emits the numeric value of every column (features in order,
then prediction, score; NaN for a non-number) and the id of the event's *shape*: model,
version, feature names and the type of each value, as the router's shape key has them. Shapes
are kept in a table of canonical byte strings; the hash only finds the candidate, the canonical
bytes are compared in full, so two shapes never merge whatever the hash does.

Events of one shape from one producer are mostly byte for byte alike outside their values, so
the scanner also keeps a few *templates*: the bytes of a recent event with its varying values
(event id, timestamp, numbers, strings) cut out as slots. An event that has a template's bytes
between its slots, and in each slot a value of the slot's type that the full scan would accept
there, is the template's shape with the values read from the slots; the full scan would walk
the same tokens to the same result, so only the slots are parsed. Anything else takes the full
scan, and an event of a known shape that missed leaves its template for the next ones.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from driftwire.detectors.numba_cache import tolerate_unreadable_entries
from driftwire.schemas.fields import MAX_NAME_LENGTH
from driftwire.stream.ingest.floats import number as _number
from driftwire.stream.ingest.floats import plain_number as _plain_number

tolerate_unreadable_entries()

FAST, NEW, SLOW = 0, 1, 2
T_FLOAT, T_INT, T_STR, T_BOOL, T_NONE = 1, 2, 3, 4, 5
TYPES = {T_FLOAT: float, T_INT: int, T_STR: str, T_BOOL: bool, T_NONE: type(None)}

#: the kinds of event a batch holds: feature events, predictions, labels
FEATURES, PREDICTIONS, LABELS = 0, 1, 2
# The top-level keys the scanner knows, in this order; their bits mark a key as seen.
_KEY_NAMES = (b"event_id", b"model", b"model_version", b"timestamp", b"features", b"prediction", b"score", b"label")
_KEYS = np.frombuffer(b"".join(_KEY_NAMES), dtype=np.uint8).copy()
_KEY_OFF = np.cumsum([0, *map(len, _KEY_NAMES)]).astype(np.int64)
K_EVENT_ID, K_MODEL, K_VERSION, K_TIMESTAMP, K_FEATURES, K_PREDICTION, K_SCORE, K_LABEL = range(8)
_UNKNOWN = np.frombuffer(b"unknown", dtype=np.uint8).copy()


_POW10_INT = np.array([10**k for k in range(17)], dtype=np.int64)
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)

# A one in each byte, a quote in each and the top bit of each, to find a quote.
_TOPS = np.uint64(0x8080808080808080)
_ONES = np.uint64(0x0101010101010101)
_QUOTES = np.uint64(0x2222222222222222)
_ONE = np.uint64(1)
#: '"model":' as a little-endian word
_MODEL_TAG = np.uint64(int.from_bytes(b'"model":', "little"))
_TRUE = np.uint64(int.from_bytes(b"true", "little"))
_FALSE = np.uint64(int.from_bytes(b"false", "little"))
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_S29 = np.uint64(29)
_S32 = np.uint64(32)
ALL_BITS = 0xFFFFFFFFFFFFFFFF

# Slot kinds of a template. A slot checks a value as the full scan checks it at that key: an
# exact number (a feature, prediction or score: its value is read), any finite number (a
# timestamp, another key), any string, a non-empty string (event_id), an RFC 3339 timestamp,
# true or false (a feature or prediction: its bytes are the value's category name).
S_NUM, S_ANY_NUM, S_STR, S_ID, S_TS, S_TS_NUM, S_BOOL = 1, 2, 3, 4, 5, 6, 7
#: a message's columns: its features, then prediction (a label's label), score, event time and
#: event id (EXTRA columns); numbers in ``vals``, strings and booleans as spans in ``spans``
EXTRA = 4
C_PREDICTION, C_SCORE, C_TIME, C_ID = range(4)
#: a span is ``start << SPAN_BITS | length`` of bytes in the batch's buffer (-1: none)
SPAN_BITS = 24
#: templates per table, and the most literal bytes and slots of one: a small fixed memory
MAX_TEMPLATES = 16
TEMPLATE_BYTES = 4096
TEMPLATE_SLOTS = 256
#: events without a match after which a template may be replaced
IDLE = 16 * MAX_TEMPLATES
# Columns of a template's row in ``meta``: slot count, shape id, feature count, prediction
# flag of the scan that made it, last use (clock), model key (see _model_key).
M_SLOTS, M_SID, M_NFEAT, M_PRED, M_USED, M_KEY = range(6)
# ``tstate``: templates in use, the clock (events looked up), the model key of the last event
# looked up (which a template of that event takes).
T_COUNT, T_CLOCK, T_KEY = range(3)
#: how far into an event its model key is looked for
KEY_SPAN = 128

class Shapes(NamedTuple):
    """The table of shapes (see :class:`ShapeTable`): open-addressing ``slots`` of ids,
    each id's hash, canonical words (``store`` at ``store_off``) and slow-path flag, and
    ``state`` [shapes, words used, values used]."""

    slots: np.ndarray
    hashes: np.ndarray
    store: np.ndarray
    store_off: np.ndarray
    slow: np.ndarray
    state: np.ndarray


class Templates(NamedTuple):
    """Recent events with their values cut out (see :func:`_remember`)."""

    lit: np.ndarray
    seg: np.ndarray
    kind: np.ndarray
    col: np.ndarray
    meta: np.ndarray
    tstate: np.ndarray


class Scanned(NamedTuple):
    """What a scan gives: per message its status, shape id and first column (``vstart``);
    per column its number (``vals``, NaN for others) and the span of a string's content or
    a boolean's literal (``spans``); per message its event time (NaN without one)."""

    status: np.ndarray
    ids: np.ndarray
    vstart: np.ndarray
    vals: np.ndarray
    spans: np.ndarray
    times: np.ndarray


class Work(NamedTuple):
    """Work arrays of the scan of one message: a shape's canonical words, its feature names'
    bounds and types, its value tokens, the bounds of its model and version."""

    scratch64: np.ndarray
    names_s: np.ndarray
    names_e: np.ndarray
    types: np.ndarray
    is_int: np.ndarray
    toks: np.ndarray
    model: np.ndarray


# The kernels allocate nothing (the caller passes them their work arrays), so they run without
# numba's reference counting: else every call, and every inlined reader with a branch, makes an
# atomic increment and decrement of each array it takes, which numba cannot prune across these
# loops' many exits and which cost about as much as the scanning itself.
_jit = nb.njit(cache=True, nogil=True, _nrt=False)
# The small readers are inlined into the scan loop: a call per token costs more than the token.
_inline = nb.njit(cache=True, nogil=True, inline="always")


@_inline
def _span(s, e):
    return (np.int64(s) << SPAN_BITS) | (e - s)


@_inline
def _role(k, kind):
    """The part key ``k`` plays in an event of ``kind``; -1 for a key it ignores. A label's
    ``label`` takes the prediction's column."""
    if k == K_LABEL:
        return K_PREDICTION if kind == LABELS else -1
    if kind == LABELS and (k == K_PREDICTION or k == K_SCORE or k == K_FEATURES):
        return -1
    if kind == FEATURES and (k == K_PREDICTION or k == K_SCORE):
        return -1
    return k


@_inline
def _ws(buf, p, e):
    while p < e:
        c = buf[p]
        if c != 32 and c != 10 and c != 13 and c != 9:
            break
        p += 1
    return p


@_inline
def _string_end(buf, p, e):
    """Index of the closing quote of a string whose content starts at ``p``; -1 for escapes,
    control or non-ASCII bytes (decoding those is the slow path's job) or no closing quote."""
    while p < e:
        c = buf[p]
        if c == 34:
            return p
        if c < 32 or c > 126 or c == 92:
            return -1
        p += 1
    return -1


@_inline
def _key(buf, s, q):
    """Index of the known key ``buf[s:q]`` in ``_KEY_NAMES``, or -1."""
    n = q - s
    for k in range(_KEY_OFF.shape[0] - 1):
        a = _KEY_OFF[k]
        if _KEY_OFF[k + 1] - a != n:
            continue
        j = 0
        while j < n and buf[s + j] == _KEYS[a + j]:
            j += 1
        if j == n:
            return k
    return -1


# The word helpers are calls, not inlined by numba: they have many callers, and numba's inlining
# costs compile time at each. The compiler inlines the calls (in its own, later pass).
@_jit
def _load8(buf, p):
    """``buf[p:p+8]`` as a little-endian word (one load once compiled)."""
    # An unsigned index: no negative-index wraparound per byte, which would keep the compiler
    # from joining the eight byte loads into one.
    q = np.uint64(p)
    w = np.uint64(0)
    for j in range(8):
        w |= np.uint64(buf[q + np.uint64(j)]) << np.uint64(8 * j)
    return w


@_inline
def _scalar(buf, p, e):
    """A string, number, true, false or null at ``p``: (end, type, value, number code);
    type 0 when it is none of them (or a string the scanner does not read)."""
    c = buf[p]
    nan = np.nan
    if c == 34:
        q = _string_end(buf, p + 1, e)
        if q < 0:
            return -1, 0, nan, 0
        return q + 1, T_STR, nan, 0
    if c == 116:
        if p + 4 <= e and buf[p + 1] == 114 and buf[p + 2] == 117 and buf[p + 3] == 101:
            return p + 4, T_BOOL, nan, 0
        return -1, 0, nan, 0
    if c == 102:
        if p + 5 <= e and buf[p + 1] == 97 and buf[p + 2] == 108 and buf[p + 3] == 115 and buf[p + 4] == 101:
            return p + 5, T_BOOL, nan, 0
        return -1, 0, nan, 0
    if c == 110:
        if p + 4 <= e and buf[p + 1] == 117 and buf[p + 2] == 108 and buf[p + 3] == 108:
            return p + 4, T_NONE, nan, 0
        return -1, 0, nan, 0
    end, v, code = _number(buf, p, e)
    if code == 0:
        return -1, 0, nan, 0
    return end, T_FLOAT, v, code


@_inline
def _digits(buf, p, n):
    v = 0
    for j in range(n):
        c = buf[p + j]
        if not 48 <= c <= 57:
            return -1
        v = v * 10 + np.int64(c - 48)
    return v


@_inline
def _days_from_civil(y, m, d):
    """Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@_jit
def _timestamp(buf, s, q):
    """Epoch seconds of ``buf[s:q]`` if it is ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)``
    naming a real instant, a form ``datetime.fromisoformat`` accepts with an offset; NaN for
    anything else (which is SLOW)."""
    nan = np.nan
    if q - s < 20 or buf[s + 4] != 45 or buf[s + 7] != 45 or buf[s + 10] != 84:
        return nan
    if buf[s + 13] != 58 or buf[s + 16] != 58:
        return nan
    year, month, day = _digits(buf, s, 4), _digits(buf, s + 5, 2), _digits(buf, s + 8, 2)
    hour, minute, second = _digits(buf, s + 11, 2), _digits(buf, s + 14, 2), _digits(buf, s + 17, 2)
    if year < 1 or not 1 <= month <= 12 or day < 1 or hour < 0 or hour > 23:
        return nan
    if minute < 0 or minute > 59 or second < 0 or second > 59:
        return nan
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day > _DAYS[month] + (1 if month == 2 and leap else 0):
        return nan
    p = s + 19
    micros = 0
    if buf[p] == 46:
        p += 1
        start = p
        while p < q and 48 <= buf[p] <= 57 and p - start < 7:
            p += 1
        if not 1 <= p - start <= 6:
            return nan
        micros = _digits(buf, start, p - start) * _POW10_INT[6 - (p - start)]
    offset = 0
    if p == q - 1:
        if buf[p] != 90:
            return nan
    else:
        if p != q - 6 or (buf[p] != 43 and buf[p] != 45) or buf[p + 3] != 58:
            return nan
        oh, om = _digits(buf, p + 1, 2), _digits(buf, p + 4, 2)
        if not (0 <= oh <= 23 and 0 <= om <= 59):
            return nan
        offset = (oh * 60 + om) * 60 * (1 if buf[p] == 43 else -1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    return float(seconds) + micros / 1e6


@_inline
def _approximate(buf, p, e):
    """The value of a number the scan found valid but not exact (code 3), to double precision
    or so: enough for a clock."""
    neg = buf[p] == 45
    if neg:
        p += 1
    m = 0.0
    scale = 0
    dot = False
    while p < e and (48 <= buf[p] <= 57 or buf[p] == 46):
        if buf[p] == 46:
            dot = True
        else:
            m = m * 10.0 + (buf[p] - 48)
            scale -= dot
        p += 1
    if p < e and (buf[p] == 101 or buf[p] == 69):
        p += 1
        sign = 1
        if p < e and (buf[p] == 43 or buf[p] == 45):
            sign = -1 if buf[p] == 45 else 1
            p += 1
        ex = 0
        while p < e and 48 <= buf[p] <= 57:
            if ex < 100_000:  # past any float's range either way
                ex = ex * 10 + np.int64(buf[p] - 48)
            p += 1
        scale += sign * ex
    v = m * 10.0 ** scale
    return -v if neg else v


@_inline
def _u32(out, pos, n):
    out[pos] = n & 255
    out[pos + 1] = (n >> 8) & 255
    out[pos + 2] = (n >> 16) & 255
    out[pos + 3] = (n >> 24) & 255
    return pos + 4


@_inline
def _put(out, pos, buf, s, e):
    """Write ``buf[s:e]`` with its length in front; the lengths make the encoding prefix-free."""
    pos = _u32(out, pos, e - s)
    for j in range(e - s):
        out[pos + j] = buf[s + j]
    return pos + e - s


@_jit
def _canonical(buf, scratch8, work, nfeat):
    """The shape's canonical bytes into ``scratch8``, zero-padded to whole words; their word count.

    Layout: model, version (an absent or null one as "unknown"), feature count, each name
    (each string with its 4-byte length), then one type code per column."""
    model_s, model_e, ver_s, ver_e = work.model[0], work.model[1], work.model[2], work.model[3]
    names_s, names_e, types = work.names_s, work.names_e, work.types
    pos = _put(scratch8, 0, buf, model_s, model_e)
    if ver_s < 0:
        pos = _put(scratch8, pos, _UNKNOWN, 0, 7)
    else:
        pos = _put(scratch8, pos, buf, ver_s, ver_e)
    pos = _u32(scratch8, pos, nfeat)
    for k in range(nfeat):
        pos = _put(scratch8, pos, buf, names_s[k], names_e[k])
    for k in range(nfeat + 2):
        scratch8[pos + k] = types[k]
    pos += nfeat + 2
    words = (pos + 7) // 8
    for j in range(pos, words * 8):
        scratch8[j] = 0
    return words


@_jit
def _hash(words, n):
    h = np.uint64(n) * _M2
    for j in range(n):
        h = (h ^ words[j]) * _M1
        h ^= h >> _S29
    return h ^ (h >> _S32)


@_jit
def _find(h, scratch64, nwords, shapes):
    """(slot, id) of the shape whose canonical words equal ``scratch64[:nwords]``; id -1 if none
    (then slot is the free slot it would take)."""
    slots, hashes, store, store_off = shapes.slots, shapes.hashes, shapes.store, shapes.store_off
    mask = slots.shape[0] - 1
    i = np.int64(h & np.uint64(mask))
    while slots[i] != 0:
        sid = slots[i] - 1
        a = store_off[sid]
        if hashes[sid] == h and store_off[sid + 1] - a == nwords:
            j = 0
            while j < nwords and store[a + j] == scratch64[j]:
                j += 1
            if j == nwords:
                return i, sid
        i = (i + 1) & mask
    return i, -1


@_inline
def _note(toks, ntok, s, e, kind, col):
    """Note the value token ``buf[s:e]`` as a template slot; counting on past the capacity
    (the tokens past it all go to the last row) marks the event as too large for a template."""
    j = min(ntok, toks.shape[0] - 1)
    toks[j, 0] = s
    toks[j, 1] = e
    toks[j, 2] = kind
    toks[j, 3] = col
    return ntok + 1


@_inline
def _slot_kind(k, t):
    """The slot kind of a top-level value of key ``k`` and type ``t`` that the scan accepted;
    0 when the value is part of the template's bytes (model and version are in the shape,
    true, false and null of other keys fix the type by themselves)."""
    if t == T_FLOAT:
        if k == K_TIMESTAMP:
            return S_TS_NUM
        return S_NUM if k == K_PREDICTION or k == K_SCORE else S_ANY_NUM
    if t == T_BOOL:
        return S_BOOL if k == K_PREDICTION else 0
    if t != T_STR or k == K_MODEL or k == K_VERSION:
        return 0
    if k == K_EVENT_ID:
        return S_ID
    return S_TS if k == K_TIMESTAMP else S_STR


@_jit
def _features(buf, p, e, cur, out, work, ntok):
    """A flat object of scalars at ``p`` (just after its brace): (end, count, tokens) or
    (-1, 0, 0). Values go to ``out.vals[cur:]`` and ``out.spans[cur:]``; exact numbers only.
    Numbers, strings and booleans are noted in ``work.toks`` as template slots."""
    vals, spans = out.vals, out.spans
    names_s, names_e, types, is_int, toks = work.names_s, work.names_e, work.types, work.is_int, work.toks
    n = 0
    p = _ws(buf, p, e)
    if p < e and buf[p] == 125:
        return p + 1, 0, ntok
    while True:
        if p >= e or buf[p] != 34 or n >= names_s.shape[0] or cur + n + EXTRA >= vals.shape[0]:
            return -1, 0, 0
        q = _string_end(buf, p + 1, e)
        if q < 0:
            return -1, 0, 0
        names_s[n] = p + 1
        names_e[n] = q
        p = _ws(buf, q + 1, e)
        if p >= e or buf[p] != 58:
            return -1, 0, 0
        p = _ws(buf, p + 1, e)
        if p >= e:
            return -1, 0, 0
        vs = p
        p, t, v, code = _scalar(buf, p, e)
        if t == 0 or code == 3:
            return -1, 0, 0
        types[n] = t
        is_int[n] = code == 1
        vals[cur + n] = v
        if t == T_FLOAT:
            ntok = _note(toks, ntok, vs, p, S_NUM, n)
        elif t == T_STR:
            spans[cur + n] = _span(vs + 1, p - 1)
            ntok = _note(toks, ntok, vs, p, S_STR, n)
        elif t == T_BOOL:
            spans[cur + n] = _span(vs, p)
            ntok = _note(toks, ntok, vs, p, S_BOOL, n)
        n += 1
        p = _ws(buf, p, e)
        if p >= e:
            return -1, 0, 0
        if buf[p] == 125:
            return p + 1, n, ntok
        if buf[p] != 44:
            return -1, 0, 0
        p = _ws(buf, p + 1, e)


@_inline
def _victim(sid, meta, tstate):
    """Where a template of shape ``sid`` goes, or -1 (see :func:`_remember`)."""
    count = tstate[T_COUNT]
    own = oldest = -1
    for u in range(count):
        if meta[u, M_SID] == sid:
            own = u
        if oldest < 0 or meta[u, M_USED] < meta[oldest, M_USED]:
            oldest = u
    if own < 0 and count < meta.shape[0]:
        return count
    t = own if own >= 0 else oldest
    return t if tstate[T_CLOCK] - meta[t, M_USED] >= IDLE else -1


@_jit
def _remember(buf, s, e, toks, ntok, sid, nfeat, event_kind, tp):
    """Keep event ``buf[s:e]`` (of shape ``sid``, its value tokens in ``toks``, just looked up
    by :func:`_lookup`) as a template: in a free place, else in place of the shape's own
    template or the least recently matched one, if that is idle. A template in use stays:
    events of a shape in ever new layouts, or more shapes taking turns than there are
    templates, would otherwise only replace templates."""
    size = e - s
    for j in range(ntok):
        size -= toks[j, 1] - toks[j, 0]
    if size > TEMPLATE_BYTES:
        return
    lit, seg, kind, col, meta, tstate = tp
    t = _victim(sid, meta, tstate)
    if t < 0:
        return
    if t == tstate[T_COUNT]:
        tstate[T_COUNT] = t + 1
    row = t * TEMPLATE_BYTES
    a = 0
    p = s
    for j in range(ntok + 1):
        q = toks[j, 0] if j < ntok else e
        for m in range(p, q):
            lit[row + a] = buf[m]
            a += 1
        seg[t, j] = a
        if j < ntok:
            kind[t, j] = toks[j, 2]
            # Prediction and score come after the features, whose count is known only now.
            c = toks[j, 3]
            col[t, j] = c if c >= 0 else nfeat - 1 - c
            p = toks[j, 1]
    meta[t, M_SLOTS] = ntok
    meta[t, M_SID] = sid
    meta[t, M_NFEAT] = nfeat
    meta[t, M_PRED] = event_kind
    meta[t, M_USED] = tstate[T_CLOCK]
    meta[t, M_KEY] = tstate[T_KEY]


@_inline
def _same(buf, p, lit, a, n):
    """Whether ``buf[p:p+n]`` equals ``lit[a:a+n]``, a word at a time: both are read up to 7
    bytes past."""
    d = np.uint64(0)
    x = 0
    while x + 8 <= n:
        d |= _load8(buf, p + x) ^ _load8(lit, a + x)
        x += 8
    if x < n:
        d |= (_load8(buf, p + x) ^ _load8(lit, a + x)) & ((_ONE << np.uint64(8 * (n - x))) - _ONE)
    return d == 0


@_jit
def _match(buf, s, e, t, tp, nslots, out, cur):
    """Whether ``buf[s:e]`` is template ``t``: its bytes between the slots, and in each slot a
    value the full scan accepts there. Numbers of exact slots go to ``out.vals[cur + column]``,
    spans of strings and booleans to ``out.spans``. Reads up to 42 bytes past ``e``."""
    lit, seg, kind, col = tp.lit, tp.seg, tp.kind, tp.col
    vals, spans = out.vals, out.spans
    p = s
    row = t * TEMPLATE_BYTES
    a = 0
    for j in range(nslots + 1):
        n = seg[t, j] - a
        if p + n > e or not _same(buf, p, lit, row + a, n):
            return False
        p += n
        a += n
        if j == nslots:
            return p == e
        if p >= e:
            return False
        k = kind[t, j]
        if k == S_NUM or k == S_ANY_NUM or k == S_TS_NUM:
            # A number of another form, or one not exact, is left to the full scan.
            p, v, code = _plain_number(buf, p, e)
            if code == 0 or (k != S_ANY_NUM and code == 3):
                return False
            if k != S_ANY_NUM:
                vals[cur + col[t, j]] = v
        elif k == S_BOOL:
            if _load8(buf, p) & np.uint64(0xFFFFFFFF) == _TRUE:
                end = p + 4
            elif _load8(buf, p) & np.uint64(0xFFFFFFFFFF) == _FALSE:
                end = p + 5
            else:
                return False
            if end > e:
                return False
            spans[cur + col[t, j]] = _span(p, end)
            p = end
        else:
            if buf[p] != 34:
                return False
            q = _string_end(buf, p + 1, e)
            # an event id is refused when empty or too long (by the full path: its error is precise)
            if q < 0 or (k == S_ID and (q == p + 1 or q - p - 1 > MAX_NAME_LENGTH)):
                return False
            if k == S_TS:
                v = _timestamp(buf, p + 1, q)
                if math.isnan(v):
                    return False
                vals[cur + col[t, j]] = v
            else:
                spans[cur + col[t, j]] = _span(p + 1, q)
            p = q + 1
    return False


@_inline
def _fits(buf, s, e, t, event_kind, width, out, cur, tp):
    """Whether event ``buf[s:e]`` is template ``t``, with the values of its columns in ``out``
    from ``cur``."""
    meta = tp.meta
    nfeat = meta[t, M_NFEAT]
    # The full scan's capacity limits, so a template never takes what the scan would refuse.
    if meta[t, M_PRED] != event_kind or nfeat > width or cur + nfeat + EXTRA > out.vals.shape[0]:
        return False
    for j in range(nfeat + EXTRA):
        out.vals[cur + j] = np.nan  # strings, bools, nulls and absent outputs and times
    # Spans are read only where a slot sets them, and at the prediction, which may be a number.
    out.spans[cur + nfeat + C_PREDICTION] = -1
    return _match(buf, s, e, t, tp, meta[t, M_SLOTS], out, cur)


@_jit
def _before_quote(w):
    """Word ``w`` with its bytes from the first double quote on cleared."""
    x = w ^ _QUOTES
    # The lowest zero byte of x (a quote of w) is found exactly by this test.
    z = (x - _ONES) & ~x & _TOPS
    keep = np.uint64(trailing_zeros(z)) & ~np.uint64(7)  # 64 when there is no quote
    return w if keep == 64 else w & ((_ONE << keep) - _ONE)


@_inline
def _model_key(buf, s, e):
    """A number naming the model of event ``buf[s:e]``, to pick the templates worth matching:
    from the first 16 bytes of the string after the first '"model":' in the first bytes of the
    event; 0 when there is none. Only a hint: a template is matched in full whatever the key."""
    end = min(e, s + KEY_SPAN)
    for p in range(s, end):
        if _load8(buf, p) == _MODEL_TAG and buf[p + 8] == 34:
            head = _before_quote(_load8(buf, p + 9))
            tail = _before_quote(_load8(buf, p + 17)) if head >> np.uint64(56) != 0 else np.uint64(0)
            return np.int64(((head * _M1) ^ tail) >> _ONE) + 1
    return 0


@_jit
def _lookup(buf, s, e, event_kind, width, out, cur, tp):
    """The template event ``buf[s:e]`` matches, or -1: trying only those of its model key."""
    meta, tstate = tp.meta, tp.tstate
    tstate[T_CLOCK] += 1
    key = tstate[T_KEY] = _model_key(buf, s, e)
    for t in range(tstate[T_COUNT]):
        if meta[t, M_KEY] == key and _fits(buf, s, e, t, event_kind, width, out, cur, tp):
            meta[t, M_USED] = tstate[T_CLOCK]
            return t
    return -1


@_inline
def _emit(i, sid, cur, nfeat, first_new, shapes, out):
    """Message ``i`` is of shape ``sid`` with its columns from ``cur``."""
    out.times[i] = out.vals[cur + nfeat + C_TIME]
    if sid >= first_new:
        out.status[i] = NEW
    elif shapes.slow[sid]:
        return
    else:
        out.status[i] = FAST
    out.ids[i] = sid
    out.vstart[i] = cur
    shapes.state[2] = cur + nfeat + EXTRA


@_jit
def scan(buf, off, start, event_kind, max_bytes, hash_mask, first_new, shapes, tp, out, work):
    """Scan messages ``start..`` of the batch (message i is ``buf[off[i]:off[i+1]]``), events
    of ``event_kind`` (FEATURES, PREDICTIONS or LABELS).

    Per message (see :class:`Scanned`): status FAST (a known shape), NEW (a shape first seen
    in this batch: id >= ``first_new``) or SLOW; for FAST and NEW the shape id, the columns'
    values and spans from ``out.vstart[i]`` and the event time. New shapes are added to
    ``shapes``. Returns the message it stopped at: ``len(off) - 1`` when done, less when the
    table is full (the caller grows it and calls again from there). Templates (``tp``) are
    tried first."""
    n = off.shape[0] - 1
    scratch8 = work.scratch64.view(np.uint8)
    width = work.names_s.shape[0]
    size = buf.shape[0]
    for i in range(start, n):
        out.status[i] = SLOW
        s, e = off[i], off[i + 1]
        if e - s > max_bytes or e - s >= 1 << SPAN_BITS:
            continue
        cur = shapes.state[2]
        # Templates read words past the message: pack() pads the batch for them.
        room = e + 64 <= size
        t = _lookup(buf, s, e, event_kind, width, out, cur, tp) if room else -1
        if t >= 0:
            _emit(i, tp.meta[t, M_SID], cur, tp.meta[t, M_NFEAT], first_new, shapes, out)
            continue
        nfeat, ntok, fallback = _full(buf, s, e, event_kind, cur, out, work)
        if nfeat < 0:
            continue
        nwords = _canonical(buf, scratch8, work, nfeat)
        h = _hash(work.scratch64, nwords) & hash_mask
        slot, sid = _find(h, work.scratch64, nwords, shapes)
        # A template only for a shape seen before: events that are each of a new shape (keys
        # that keep changing) would only churn the templates.
        if sid >= 0 and not fallback and ntok < work.toks.shape[0] and room:
            _remember(buf, s, e, work.toks, ntok, sid, nfeat, event_kind, tp)
        if sid < 0:
            sid = _add_shape(h, slot, work.scratch64, nwords, shapes)
            if sid < 0:
                return i
        _emit(i, sid, cur, nfeat, first_new, shapes, out)
    return n


@_jit
def _add_shape(h, slot, scratch64, nwords, shapes):
    """The id of a new shape of canonical words ``scratch64[:nwords]``; -1 when the table is full."""
    state = shapes.state
    sid = state[0]
    used = state[1]
    if sid >= shapes.hashes.shape[0] or used + nwords > shapes.store.shape[0] or 2 * (sid + 1) > shapes.slots.shape[0]:
        return -1
    for j in range(nwords):
        shapes.store[used + j] = scratch64[j]
    shapes.store_off[sid + 1] = used + nwords
    shapes.hashes[sid] = h
    shapes.slow[sid] = 0
    shapes.slots[slot] = sid + 1
    state[0] = sid + 1
    state[1] = used + nwords
    return sid


@_jit
def _full(buf, s, e, event_kind, cur, out, work):
    """The full scan of message ``buf[s:e]``: (feature count, value tokens, whether only the
    reference path reads it as Python does), its columns from ``cur`` and its shape's
    names, bounds and types in ``work``; feature count -1 when the message is not FAST."""
    nan = np.nan
    vals, spans = out.vals, out.spans
    types, is_int, toks = work.types, work.is_int, work.toks
    p = _ws(buf, s, e)
    if p >= e or buf[p] != 123:
        return -1, 0, False
    p = _ws(buf, p + 1, e)
    seen = 0
    model_s = model_e = ver_s = ver_e = -1
    fallback = False
    lenient = False  # a number read only as "finite": fine for msgspec, not checked for orjson
    nfeat = 0
    ntok = np.int64(0)  # not the literal 0: _features would be compiled for that type too
    pred_t, pred_v, pred_int, pred_span = T_NONE, nan, False, np.int64(-1)
    ts = nan
    id_span = np.int64(-1)
    score_t, score_v, score_int = T_NONE, nan, False
    ok = p < e and buf[p] != 125
    while ok:
        ok = False
        if p >= e or buf[p] != 34:
            break
        q = _string_end(buf, p + 1, e)
        if q < 0:
            break
        k = _key(buf, p + 1, q)
        if k >= 0:
            k = _role(k, event_kind)
        if k >= 0:
            if seen & (1 << k):
                break
            seen |= 1 << k
        p = _ws(buf, q + 1, e)
        if p >= e or buf[p] != 58:
            break
        p = _ws(buf, p + 1, e)
        if p >= e:
            break
        if k == K_FEATURES and buf[p] == 123:
            p, nfeat, ntok = _features(buf, p + 1, e, cur, out, work, ntok)
            if p < 0:
                break
        else:
            vs = p
            p, t, v, code = _scalar(buf, p, e)
            if t == 0:
                break
            lenient |= code == 3
            if k == K_EVENT_ID or k == K_MODEL:
                if t != T_STR or p - vs <= 2 or p - vs - 2 > MAX_NAME_LENGTH:
                    break
                if k == K_MODEL:
                    model_s, model_e = vs + 1, p - 1
                else:
                    id_span = _span(vs + 1, p - 1)
            elif k == K_VERSION:
                if t == T_STR:
                    ver_s, ver_e = vs + 1, p - 1
                elif t == T_NONE:
                    fallback = True  # msgspec refuses a null version: the reference is orjson's
                else:
                    break
            elif k == K_TIMESTAMP:
                if t == T_BOOL:
                    break
                if t == T_STR:
                    ts = _timestamp(buf, vs + 1, p - 1)
                    if math.isnan(ts):
                        break
                elif t == T_FLOAT:
                    ts = v if code != 3 else _approximate(buf, vs, p)
            elif k == K_FEATURES:
                if t != T_NONE or event_kind != PREDICTIONS:
                    break
                fallback = True  # null features: msgspec refuses, orjson's path reads {}
            elif k == K_PREDICTION:
                if t == T_NONE or code == 3:
                    break
                pred_t, pred_v, pred_int = t, v, code == 1
                if t == T_STR:
                    pred_span = _span(vs + 1, p - 1)
                elif t == T_BOOL:
                    pred_span = _span(vs, p)
            elif k == K_SCORE:
                if t == T_STR or t == T_BOOL or code == 3:
                    break
                score_t, score_v, score_int = t, v, code == 1
            slot = _slot_kind(k, t)
            if slot:
                ntok = _note(toks, ntok, vs, p, slot, _extra_column(k))
        p = _ws(buf, p, e)
        if p >= e:
            break
        if buf[p] == 125:
            ok = _ws(buf, p + 1, e) == e
            break
        if buf[p] != 44:
            break
        p = _ws(buf, p + 1, e)
        ok = True
    if not ok or (fallback and lenient) or not seen & (1 << K_EVENT_ID) or not seen & (1 << K_MODEL):
        return -1, 0, False
    if event_kind != FEATURES and not seen & (1 << K_PREDICTION):
        return -1, 0, False
    if event_kind == FEATURES and not seen & (1 << K_FEATURES):
        return -1, 0, False
    if cur + nfeat + EXTRA > vals.shape[0]:
        return -1, 0, False
    # msgspec reads every number as a float; only orjson's path keeps integers int.
    for j in range(nfeat):
        if types[j] == T_FLOAT and is_int[j] and fallback:
            types[j] = T_INT
    types[nfeat] = T_INT if pred_t == T_FLOAT and pred_int and fallback else pred_t
    types[nfeat + 1] = T_INT if score_t == T_FLOAT and score_int and fallback else score_t
    vals[cur + nfeat + C_PREDICTION] = pred_v
    vals[cur + nfeat + C_SCORE] = score_v
    vals[cur + nfeat + C_TIME] = ts
    vals[cur + nfeat + C_ID] = nan
    spans[cur + nfeat + C_PREDICTION] = pred_span
    spans[cur + nfeat + C_SCORE] = -1
    spans[cur + nfeat + C_TIME] = -1
    spans[cur + nfeat + C_ID] = id_span
    work.model[0], work.model[1], work.model[2], work.model[3] = model_s, model_e, ver_s, ver_e
    return nfeat, ntok, fallback


@_inline
def _extra_column(k):
    """A template slot's column after the features, counted back from them: -1 the
    prediction, -2 the score (and other keys' values, which it does not keep), -3 the event
    time, -4 the event id."""
    if k == K_PREDICTION:
        return -1
    if k == K_TIMESTAMP:
        return -3
    return -4 if k == K_EVENT_ID else -2


@_jit
def rehash(hashes, n, slots):
    """Fill empty ``slots`` with shapes ``0..n-1`` (after the table grew)."""
    mask = slots.shape[0] - 1
    for sid in range(n):
        i = np.int64(hashes[sid] & np.uint64(mask))
        while slots[i] != 0:
            i = (i + 1) & mask
        slots[i] = sid + 1


class Selection(NamedTuple):
    """Columns taken from each shape's messages: those of shape ``sid`` are
    ``col[off[sid]:off[sid + 1]]``, each going to the series at the same place in ``series``."""

    off: np.ndarray
    col: np.ndarray
    series: np.ndarray


@_jit
def gather(scanned, columns, index, sel, counts, out_series, out_values, out_messages):
    """The selected (series, value of ``columns``, message index) of every FAST message, in
    message order; ``counts`` gets the number of FAST messages of each shape. Returns how
    many were written. ``columns`` is the scan's ``vals`` or ``spans``."""
    status, ids, vstart = scanned.status, scanned.ids, scanned.vstart
    o = 0
    for i in range(status.shape[0]):
        if status[i] != FAST:
            continue
        sid = ids[i]
        counts[sid] += 1
        base = vstart[i]
        for k in range(sel.off[sid], sel.off[sid + 1]):
            out_series[o] = sel.series[k]
            out_values[o] = columns[base + sel.col[k]]
            out_messages[o] = index[i]
            o += 1
    return o


def decode_canonical(data: bytes) -> tuple[str, str, tuple, tuple]:
    """A shape's canonical bytes back to the router's shape key (model, version, feature names,
    type of each value with prediction and score at the end)."""
    pos = 0

    def take() -> bytes:
        nonlocal pos
        n = int.from_bytes(data[pos:pos + 4], "little")
        pos += 4 + n
        return data[pos - n:pos]

    model = take().decode("ascii")
    version = take().decode("ascii")
    nfeat = int.from_bytes(data[pos:pos + 4], "little")
    pos += 4
    names = tuple(take().decode("ascii") for _ in range(nfeat))
    types = tuple(TYPES[c] for c in data[pos:pos + nfeat + 2])
    return model, version, names, types


class ShapeTable:
    """The scanner's table of shapes (canonical bytes -> id) with each id's selected columns.

    Ids count up from 0 in the order shapes are first seen; the caller resolves each new id
    once (:meth:`resolve`), to its numeric columns and series ids or to the slow path."""

    def __init__(self, hash_mask: int = ALL_BITS):
        self.hash_mask = np.uint64(hash_mask)
        self.clear()

    def clear(self) -> None:
        self.slots = np.zeros(64, dtype=np.int64)
        self.hashes = np.zeros(16, dtype=np.uint64)
        self.store = np.zeros(1024, dtype=np.uint64)
        self.store_off = np.zeros(17, dtype=np.int64)
        self.slow = np.zeros(16, dtype=np.int8)
        self.state = np.zeros(3, dtype=np.int64)
        #: the numeric columns each shape feeds to detector series, and its categorical ones
        #: (strings and booleans) to window series
        self.numeric = _Selections()
        self.categorical = _Selections()
        # Templates of recent events (see scan's module docstring), each naming a shape id: they go with the ids.
        self.lit = np.zeros(MAX_TEMPLATES * TEMPLATE_BYTES + 8, dtype=np.uint8)
        self.seg = np.zeros((MAX_TEMPLATES, TEMPLATE_SLOTS + 1), dtype=np.int64)
        self.kind = np.zeros((MAX_TEMPLATES, TEMPLATE_SLOTS), dtype=np.int8)
        self.col = np.zeros((MAX_TEMPLATES, TEMPLATE_SLOTS), dtype=np.int64)
        self.meta = np.zeros((MAX_TEMPLATES, 6), dtype=np.int64)
        self.tstate = np.zeros(3, dtype=np.int64)
        #: ids resolved so far (``0..resolved-1``)
        self.resolved = 0

    def __len__(self) -> int:
        return int(self.state[0])

    def scan(self, buf: np.ndarray, off: np.ndarray, event_kind: int, max_bytes: int) -> Scanned:
        """What the scan reads of each message of events of ``event_kind``; see :func:`scan`."""
        n = off.size - 1
        # A feature takes at least 4 bytes ("":0) and a message holds EXTRA columns besides.
        columns = buf.size // 4 + EXTRA * n + 8
        out = Scanned(np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),
                      np.empty(columns, dtype=np.float64), np.empty(columns, dtype=np.int64), np.full(n, np.nan))
        longest = int(np.diff(off).max()) if n else 0
        scratch = np.empty((min(longest, max_bytes) + 64) // 8 + 8, dtype=np.uint64)
        width = scratch.size * 2
        work = Work(scratch, np.empty(width, np.int64), np.empty(width, np.int64), np.empty(width + 2, np.uint8),
                    np.empty(width + 2, np.bool_), np.empty((TEMPLATE_SLOTS + 1, 4), np.int64),
                    np.empty(4, np.int64))
        templates = Templates(self.lit, self.seg, self.kind, self.col, self.meta, self.tstate)
        self.state[2] = 0
        first_new = int(self.state[0])
        i = 0
        while True:
            shapes = Shapes(self.slots, self.hashes, self.store, self.store_off, self.slow, self.state)
            i = scan(buf, off, i, int(event_kind), max_bytes, self.hash_mask, first_new, shapes, templates, out,
                     work)
            if i == n:
                return out
            self._grow(scratch.size)

    def _grow(self, words: int) -> None:
        n = len(self)
        if n >= self.hashes.size:
            self.hashes = _grown(self.hashes, 2 * n)
            self.slow = _grown(self.slow, 2 * n)
            self.store_off = _grown(self.store_off, 2 * n + 1)
        if self.state[1] + words > self.store.size:
            self.store = _grown(self.store, 2 * (self.state[1] + words))
        if 2 * (n + 1) > self.slots.size:
            self.slots = np.zeros(4 * self.slots.size, dtype=np.int64)
            rehash(self.hashes, n, self.slots)

    def canonical(self, sid: int) -> bytes:
        return self.store[self.store_off[sid]:self.store_off[sid + 1]].tobytes()

    def resolve(self, sid: int, columns: np.ndarray | None, series: np.ndarray | None,
                categories: np.ndarray | None = None, category_series: np.ndarray | None = None) -> None:
        """Shape ``sid`` (the next unresolved one) takes the FAST path with these selected
        numeric columns and series ids (and categorical columns and window series), or (None)
        the slow path."""
        assert sid == self.resolved, "shapes are resolved in the order they were first seen"
        self.numeric.add(sid, columns, series)
        self.categorical.add(sid, categories, category_series)
        self.slow[sid] = columns is None
        self.resolved = sid + 1

    def gather(self, scanned: Scanned, index: np.ndarray):
        """(series, values, messages, FAST messages per shape id) of the FAST messages."""
        counts = np.zeros(len(self), dtype=np.int64)
        # the columns the scan wrote bound what is selected from them
        return (*self.numeric.gather(scanned, scanned.vals, index, counts, int(self.state[2])), counts)

    def gather_categories(self, scanned: Scanned, index: np.ndarray):
        """(window series, spans, messages) of the FAST messages' categorical values."""
        if not self.categorical.off[self.resolved]:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return self.categorical.gather(scanned, scanned.spans, index, np.zeros(len(self), dtype=np.int64),
                                       int(self.state[2]))


class _Selections:
    """A :class:`Selection` that grows as shapes are resolved."""

    def __init__(self):
        self.off = np.zeros(17, dtype=np.int64)
        self.col = np.zeros(64, dtype=np.int64)
        self.series = np.zeros(64, dtype=np.int64)

    def add(self, sid: int, columns: np.ndarray | None, series: np.ndarray | None) -> None:
        if sid + 2 > self.off.size:
            self.off = _grown(self.off, 2 * (sid + 2))
        a = int(self.off[sid])
        k = 0 if columns is None else columns.size
        if a + k > self.col.size:
            self.col = _grown(self.col, 2 * (a + k))
            self.series = _grown(self.series, 2 * (a + k))
        if k:
            self.col[a:a + k] = columns
            self.series[a:a + k] = series
        self.off[sid + 1] = a + k

    def gather(self, scanned: Scanned, columns: np.ndarray, index: np.ndarray, counts: np.ndarray, size: int):
        out_series = np.empty(size, dtype=np.int64)
        out_values = np.empty(size, dtype=columns.dtype)
        out_messages = np.empty(size, dtype=np.int64)
        o = gather(scanned, columns, index, Selection(self.off, self.col, self.series), counts, out_series,
                   out_values, out_messages)
        return out_series[:o], out_values[:o], out_messages[:o]


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    b = np.zeros(max(size, a.size), dtype=a.dtype)
    b[:a.size] = a
    return b


def warm_up() -> None:
    """Compile or load the scanner before the first batch waits on it."""
    table = ShapeTable()
    # The second event leaves a template, the third matches it.
    one = np.zeros(1, dtype=np.int64)
    for kind, event in ((PREDICTIONS, b'{"event_id":"e","model":"m","prediction":true,"features":{"a":1.5,"b":"x"}}'),
                        (LABELS, b'{"event_id":"e","model":"m","label":"x"}')):
        buf, off = pack([event] * 3)
        scanned = table.scan(buf, off, kind, 1 << 20)
        table.resolve(table.resolved, one, one, one + 1, one)
        table.gather(scanned, np.arange(3, dtype=np.int64))
        table.gather_categories(scanned, np.arange(3, dtype=np.int64))
    rehash(table.hashes, len(table), np.zeros(4 * table.slots.size, dtype=np.int64))  # a table that grows


#: the scanner's template path reads words up to 64 bytes past a message
_PAD = bytes(64)


def pack(values: list, max_bytes: int = 1 << 62) -> tuple[np.ndarray, np.ndarray]:
    """The messages as one byte buffer and the offsets of each (a null value is empty, and so is
    one of more than ``max_bytes``, which only its size refuses); the buffer goes on past the
    last message, as the scanner's templates need (see :func:`scan`)."""
    try:
        if max(map(len, values), default=0) > max_bytes:
            raise TypeError
        joined = b"".join([*values, _PAD])
    except TypeError:
        values = [b"" if v is None or len(v) > max_bytes else v for v in values]
        joined = b"".join([*values, _PAD])
    off = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)), out=off[1:])
    return np.frombuffer(joined, dtype=np.uint8), off
