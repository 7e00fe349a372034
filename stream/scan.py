"""One numba pass over a whole batch of JSON events, for the form nearly every event has.

The scanner reads each message of a batch and either understands it completely (FAST: a valid
event of a strict subset of JSON whose values it can read exactly as Python would) or gives up
on it (SLOW: the router's per-message path takes it and raises the precise error or accepts the
unusual form). It never guesses: anything outside the subset is SLOW.

The FAST subset: one JSON object, keys plain ASCII without escapes; strings printable ASCII
without escapes; numbers in strict JSON grammar whose value is exact in float64 by Clinger's
fast path (integers below 2**53, decimal mantissas below 2**53 scaled by at most 10**22); true,
false, null; a flat ``features`` object of such scalars; other keys only with scalar values;
no known key twice; ``timestamp`` a number or an RFC 3339 string of the common form.

For a FAST message the scanner emits the numeric value of every column (features in order,
then prediction, score; NaN for a non-number) and the id of the event's *shape*: model,
version, feature names and the type of each value, as the router's shape key has them. Shapes
are kept in a table of canonical byte strings; the hash only finds the candidate, the canonical
bytes are compared in full, so two shapes never merge whatever the hash does.
"""

from __future__ import annotations

import numba as nb
import numpy as np

FAST, NEW, SLOW = 0, 1, 2
T_FLOAT, T_INT, T_STR, T_BOOL, T_NONE = 1, 2, 3, 4, 5
TYPES = {T_FLOAT: float, T_INT: int, T_STR: str, T_BOOL: bool, T_NONE: type(None)}

# The top-level keys the scanner knows, in this order; their bits mark a key as seen.
_KEY_NAMES = (b"event_id", b"model", b"model_version", b"timestamp", b"features", b"prediction", b"score")
_KEYS = np.frombuffer(b"".join(_KEY_NAMES), dtype=np.uint8).copy()
_KEY_OFF = np.cumsum([0, *map(len, _KEY_NAMES)]).astype(np.int64)
K_EVENT_ID, K_MODEL, K_VERSION, K_TIMESTAMP, K_FEATURES, K_PREDICTION, K_SCORE = range(7)
_UNKNOWN = np.frombuffer(b"unknown", dtype=np.uint8).copy()

#: 10**k for k <= 22: exact in float64, which is what makes one multiplication correctly rounded
_POW10 = np.array([10.0**k for k in range(23)])
_EXACT = 2**53
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_S29 = np.uint64(29)
_S32 = np.uint64(32)
ALL_BITS = 0xFFFFFFFFFFFFFFFF

_jit = nb.njit(cache=True, nogil=True)
# The small readers are inlined into the scan loop: a call per token costs more than the token.
_inline = nb.njit(cache=True, nogil=True, inline="always")


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


@_inline
def _number(buf, p, e):
    """A number in strict JSON grammar at ``p``: (end, value, code). code 0: not a number;
    1: an integer, value exact; 2: a fraction or exponent form, value exact (Clinger's fast
    path); 3: valid and surely finite in float64, value not computed."""
    neg = False
    if p < e and buf[p] == 45:
        neg = True
        p += 1
    if p >= e:
        return -1, 0.0, 0
    m = 0
    exact = True
    intdigits = 0
    c = buf[p]
    if c == 48:
        p += 1
        intdigits = 1
    elif 49 <= c <= 57:
        while p < e and 48 <= buf[p] <= 57:
            if exact:
                m = m * 10 + np.int64(buf[p] - 48)
                exact = m < _EXACT
            intdigits += 1
            p += 1
    else:
        return -1, 0.0, 0
    is_int = True
    frac = 0
    if p < e and buf[p] == 46:
        is_int = False
        p += 1
        if p >= e or not 48 <= buf[p] <= 57:
            return -1, 0.0, 0
        while p < e and 48 <= buf[p] <= 57:
            if exact:
                m = m * 10 + np.int64(buf[p] - 48)
                exact = m < _EXACT
                frac += 1
            p += 1
    ex = 0
    if p < e and (buf[p] == 101 or buf[p] == 69):
        is_int = False
        p += 1
        eneg = False
        if p < e and (buf[p] == 43 or buf[p] == 45):
            eneg = buf[p] == 45
            p += 1
        if p >= e or not 48 <= buf[p] <= 57:
            return -1, 0.0, 0
        while p < e and 48 <= buf[p] <= 57:
            if ex < 1_000_000:
                ex = ex * 10 + np.int64(buf[p] - 48)
            p += 1
        if eneg:
            ex = -ex
    if is_int and exact:
        v = float(m)
        # An integer has no negative zero: -0 is 0, as int("-0") and msgspec have it.
        return p, (-v if neg and m != 0 else v), 1
    e10 = ex - frac
    if exact and -22 <= e10 <= 22:
        v = float(m) * _POW10[e10] if e10 >= 0 else float(m) / _POW10[-e10]
        return p, (-v if neg else v), 2
    # Below 10**300 by its digit count: finite whatever its digits (an underflow is 0.0).
    if intdigits + ex <= 300 and -1_000_000 < ex:
        return p, 0.0, 3
    return p, 0.0, 0


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


@_jit
def _timestamp(buf, s, q):
    """Whether ``buf[s:q]`` is ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)`` naming a real
    instant: a form ``datetime.fromisoformat`` accepts with an offset (others are SLOW)."""
    if q - s < 20 or buf[s + 4] != 45 or buf[s + 7] != 45 or buf[s + 10] != 84:
        return False
    if buf[s + 13] != 58 or buf[s + 16] != 58:
        return False
    year, month, day = _digits(buf, s, 4), _digits(buf, s + 5, 2), _digits(buf, s + 8, 2)
    hour, minute, second = _digits(buf, s + 11, 2), _digits(buf, s + 14, 2), _digits(buf, s + 17, 2)
    if year < 1 or not 1 <= month <= 12 or day < 1 or hour < 0 or hour > 23:
        return False
    if minute < 0 or minute > 59 or second < 0 or second > 59:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day > _DAYS[month] + (1 if month == 2 and leap else 0):
        return False
    p = s + 19
    if buf[p] == 46:
        p += 1
        start = p
        while p < q and 48 <= buf[p] <= 57 and p - start < 7:
            p += 1
        if not 1 <= p - start <= 6:
            return False
    if p == q - 1:
        return buf[p] == 90
    if p != q - 6 or (buf[p] != 43 and buf[p] != 45) or buf[p + 3] != 58:
        return False
    oh, om = _digits(buf, p + 1, 2), _digits(buf, p + 4, 2)
    return 0 <= oh <= 23 and 0 <= om <= 59


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
def _canonical(buf, scratch8, model_s, model_e, ver_s, ver_e, names_s, names_e, types, nfeat):
    """The shape's canonical bytes into ``scratch8``, zero-padded to whole words; their word count.

    Layout: model, version (an absent or null one as "unknown"), feature count, each name
    (each string with its 4-byte length), then one type code per column."""
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
def _find(h, scratch64, nwords, slots, hashes, store, store_off):
    """(slot, id) of the shape whose canonical words equal ``scratch64[:nwords]``; id -1 if none
    (then slot is the free slot it would take)."""
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


@_jit
def _features(buf, p, e, vals, cur, names_s, names_e, types, is_int):
    """A flat object of scalars at ``p`` (just after its brace): (end, count) or (-1, 0).
    Values go to ``vals[cur:]``; exact numbers only."""
    n = 0
    p = _ws(buf, p, e)
    if p < e and buf[p] == 125:
        return p + 1, 0
    while True:
        if p >= e or buf[p] != 34 or n >= names_s.shape[0] or cur + n + 2 >= vals.shape[0]:
            return -1, 0
        q = _string_end(buf, p + 1, e)
        if q < 0:
            return -1, 0
        names_s[n] = p + 1
        names_e[n] = q
        p = _ws(buf, q + 1, e)
        if p >= e or buf[p] != 58:
            return -1, 0
        p = _ws(buf, p + 1, e)
        if p >= e:
            return -1, 0
        p, t, v, code = _scalar(buf, p, e)
        if t == 0 or code == 3:
            return -1, 0
        types[n] = t
        is_int[n] = code == 1
        vals[cur + n] = v
        n += 1
        p = _ws(buf, p, e)
        if p >= e:
            return -1, 0
        if buf[p] == 125:
            return p + 1, n
        if buf[p] != 44:
            return -1, 0
        p = _ws(buf, p + 1, e)


@_jit
def scan(buf, off, start, prediction, max_bytes, hash_mask, first_new,
         slots, hashes, store, store_off, slow, state, status, ids, vstart, vals, scratch64):
    """Scan messages ``start..`` of the batch (message i is ``buf[off[i]:off[i+1]]``).

    Per message: ``status`` FAST (a known shape), NEW (a shape first seen in this batch: id
    >= ``first_new``) or SLOW; for FAST and NEW the shape id in ``ids`` and the columns'
    values at ``vals[vstart[i]:]``. New shapes are added to the table (``slots``, ``hashes``,
    canonical words in ``store`` at ``store_off``); ``state`` holds [shapes, words used, values
    used]. Returns the message it stopped at: ``len(off) - 1`` when done, less when the table
    is full (the caller grows it and calls again from there)."""
    n = off.shape[0] - 1
    nan = np.nan
    scratch8 = scratch64.view(np.uint8)
    width = scratch8.shape[0] // 4
    names_s = np.empty(width, np.int64)
    names_e = np.empty(width, np.int64)
    types = np.empty(width + 2, np.uint8)
    is_int = np.empty(width + 2, np.bool_)
    for i in range(start, n):
        status[i] = SLOW
        s, e = off[i], off[i + 1]
        if e - s > max_bytes:
            continue
        cur = state[2]
        p = _ws(buf, s, e)
        if p >= e or buf[p] != 123:
            continue
        p = _ws(buf, p + 1, e)
        seen = 0
        model_s = model_e = ver_s = ver_e = -1
        fallback = False
        lenient = False  # a number read only as "finite": fine for msgspec, not checked for orjson
        nfeat = 0
        pred_t, pred_v, pred_int = T_NONE, nan, False
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
            if k == K_PREDICTION or k == K_SCORE:
                k = k if prediction else -1  # a feature event does not read them
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
                p, nfeat = _features(buf, p + 1, e, vals, cur, names_s, names_e, types, is_int)
                if p < 0:
                    break
            else:
                vs = p
                p, t, v, code = _scalar(buf, p, e)
                if t == 0:
                    break
                lenient |= code == 3
                if k == K_EVENT_ID or k == K_MODEL:
                    if t != T_STR or p - vs <= 2:
                        break
                    if k == K_MODEL:
                        model_s, model_e = vs + 1, p - 1
                elif k == K_VERSION:
                    if t == T_STR:
                        ver_s, ver_e = vs + 1, p - 1
                    elif t == T_NONE:
                        fallback = True  # msgspec refuses a null version: the reference is orjson's
                    else:
                        break
                elif k == K_TIMESTAMP:
                    if t == T_BOOL or (t == T_STR and not _timestamp(buf, vs + 1, p - 1)):
                        break
                elif k == K_FEATURES:
                    if t != T_NONE or not prediction:
                        break
                    fallback = True  # null features: msgspec refuses, orjson's path reads {}
                elif k == K_PREDICTION:
                    if t == T_NONE or code == 3:
                        break
                    pred_t, pred_v, pred_int = t, v, code == 1
                elif k == K_SCORE:
                    if t == T_STR or t == T_BOOL or code == 3:
                        break
                    score_t, score_v, score_int = t, v, code == 1
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
            continue
        if prediction and not seen & (1 << K_PREDICTION):
            continue
        if not prediction and not seen & (1 << K_FEATURES):
            continue
        if cur + nfeat + 2 > vals.shape[0]:
            continue
        # msgspec reads every number as a float; only orjson's path keeps integers int.
        for j in range(nfeat):
            if types[j] == T_FLOAT and is_int[j] and fallback:
                types[j] = T_INT
        types[nfeat] = T_INT if pred_t == T_FLOAT and pred_int and fallback else pred_t
        types[nfeat + 1] = T_INT if score_t == T_FLOAT and score_int and fallback else score_t
        vals[cur + nfeat] = pred_v
        vals[cur + nfeat + 1] = score_v
        nwords = _canonical(buf, scratch8, model_s, model_e, ver_s, ver_e, names_s, names_e, types, nfeat)
        h = _hash(scratch64, nwords) & hash_mask
        slot, sid = _find(h, scratch64, nwords, slots, hashes, store, store_off)
        if sid < 0:
            sid = state[0]
            used = state[1]
            if sid >= hashes.shape[0] or used + nwords > store.shape[0] or 2 * (sid + 1) > slots.shape[0]:
                return i
            for j in range(nwords):
                store[used + j] = scratch64[j]
            store_off[sid + 1] = used + nwords
            hashes[sid] = h
            slow[sid] = 0
            slots[slot] = sid + 1
            state[0] = sid + 1
            state[1] = used + nwords
        if sid >= first_new:
            status[i] = NEW
        elif slow[sid]:
            continue
        else:
            status[i] = FAST
        ids[i] = sid
        vstart[i] = cur
        state[2] = cur + nfeat + 2
    return n


@_jit
def rehash(hashes, n, slots):
    """Fill empty ``slots`` with shapes ``0..n-1`` (after the table grew)."""
    mask = slots.shape[0] - 1
    for sid in range(n):
        i = np.int64(hashes[sid] & np.uint64(mask))
        while slots[i] != 0:
            i = (i + 1) & mask
        slots[i] = sid + 1


@_jit
def gather(status, ids, vstart, vals, index, sel_off, sel_col, sel_series, counts,
           out_series, out_values, out_messages):
    """The selected (series, value, message index) of every FAST message, in message order;
    ``counts`` gets the number of FAST messages of each shape. Returns how many were written."""
    o = 0
    for i in range(status.shape[0]):
        if status[i] != FAST:
            continue
        sid = ids[i]
        counts[sid] += 1
        base = vstart[i]
        for k in range(sel_off[sid], sel_off[sid + 1]):
            out_series[o] = sel_series[k]
            out_values[o] = vals[base + sel_col[k]]
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
        self.sel_off = np.zeros(17, dtype=np.int64)
        self.sel_col = np.zeros(64, dtype=np.int64)
        self.sel_series = np.zeros(64, dtype=np.int64)
        #: ids resolved so far (``0..resolved-1``)
        self.resolved = 0

    def __len__(self) -> int:
        return int(self.state[0])

    def scan(self, buf: np.ndarray, off: np.ndarray, prediction: bool, max_bytes: int):
        """(status, ids, vstart, vals) of each message; see :func:`scan`."""
        n = off.size - 1
        status = np.empty(n, dtype=np.int8)
        ids = np.empty(n, dtype=np.int64)
        vstart = np.empty(n, dtype=np.int64)
        # A feature takes at least 4 bytes ("":0) and a message holds two outputs besides.
        vals = np.empty(buf.size // 4 + 2 * n + 8, dtype=np.float64)
        longest = int(np.diff(off).max()) if n else 0
        scratch = np.empty((min(longest, max_bytes) + 64) // 8 + 8, dtype=np.uint64)
        self.state[2] = 0
        first_new = int(self.state[0])
        i = 0
        while True:
            i = scan(buf, off, i, prediction, max_bytes, self.hash_mask, first_new, self.slots, self.hashes,
                     self.store, self.store_off, self.slow, self.state, status, ids, vstart, vals, scratch)
            if i == n:
                return status, ids, vstart, vals
            self._grow(scratch.size)

    def _grow(self, words: int) -> None:
        n = len(self)
        if n >= self.hashes.size:
            self.hashes = _grown(self.hashes, 2 * n)
            self.slow = _grown(self.slow, 2 * n)
            self.store_off = _grown(self.store_off, 2 * n + 1)
            self.sel_off = _grown(self.sel_off, 2 * n + 1)
        if self.state[1] + words > self.store.size:
            self.store = _grown(self.store, 2 * (self.state[1] + words))
        if 2 * (n + 1) > self.slots.size:
            self.slots = np.zeros(4 * self.slots.size, dtype=np.int64)
            rehash(self.hashes, n, self.slots)

    def canonical(self, sid: int) -> bytes:
        return self.store[self.store_off[sid]:self.store_off[sid + 1]].tobytes()

    def resolve(self, sid: int, columns: np.ndarray | None, series: np.ndarray | None) -> None:
        """Shape ``sid`` (the next unresolved one) takes the FAST path with these selected
        columns and series ids, or (None) the slow path."""
        assert sid == self.resolved, "shapes are resolved in the order they were first seen"
        a = int(self.sel_off[sid])
        k = 0 if columns is None else columns.size
        if a + k > self.sel_col.size:
            self.sel_col = _grown(self.sel_col, 2 * (a + k))
            self.sel_series = _grown(self.sel_series, 2 * (a + k))
        if k:
            self.sel_col[a:a + k] = columns
            self.sel_series[a:a + k] = series
        self.sel_off[sid + 1] = a + k
        self.slow[sid] = columns is None
        self.resolved = sid + 1

    def gather(self, status, ids, vstart, vals, index):
        """(series, values, messages, FAST messages per shape id) of the FAST messages."""
        size = int(self.state[2])
        out_series = np.empty(size, dtype=np.int64)
        out_values = np.empty(size, dtype=np.float64)
        out_messages = np.empty(size, dtype=np.int64)
        counts = np.zeros(len(self), dtype=np.int64)
        o = gather(status, ids, vstart, vals, index, self.sel_off, self.sel_col, self.sel_series, counts,
                   out_series, out_values, out_messages)
        return out_series[:o], out_values[:o], out_messages[:o], counts


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    b = np.zeros(max(size, a.size), dtype=a.dtype)
    b[:a.size] = a
    return b


def warm_up() -> None:
    """Compile or load the scanner before the first batch waits on it."""
    table = ShapeTable()
    buf, off = pack([b'{"event_id":"e","model":"m","prediction":1,"features":{"a":1.5}}'])
    status, ids, vstart, vals = table.scan(buf, off, True, 1 << 20)
    table.resolve(0, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
    table.gather(status, ids, vstart, vals, np.zeros(1, dtype=np.int64))


def pack(values: list) -> tuple[np.ndarray, np.ndarray]:
    """The messages as one byte buffer and the offsets of each (a null value is empty)."""
    try:
        joined = b"".join(values)
    except TypeError:
        values = [b"" if v is None else v for v in values]
        joined = b"".join(values)
    off = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)), out=off[1:])
    return np.frombuffer(joined, dtype=np.uint8), off
