"""The number readers of the scanner before it read 17-digit decimals (driftwire 0.1): the
reference :mod:`test_floats` holds the exact readers to on what is a number at all, and on the
value of every number these read."""

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

_jit = nb.njit(cache=True, nogil=True, _nrt=False)
_inline = nb.njit(cache=True, nogil=True, inline="always")
_ONE = np.uint64(1)
_S32 = np.uint64(32)

#: 10**k for k <= 22: exact in float64, which is what makes one multiplication correctly rounded
_POW10 = np.array([10.0**k for k in range(23)])
_EXACT = 2**53
_SIGN = np.array([1.0, -1.0])
_POW10_INT = np.array([10**k for k in range(17)], dtype=np.int64)

# Eight bytes at once: '0' in each byte, the low seven bits of each, 0x76 (a byte of ten or more
# plus it reaches the top bit), the top bit of each; the shifts of the eight-digit sum; a one in
# each byte and a quote in each, to find a quote.
_ZEROS = np.uint64(0x3030303030303030)
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_TO_TOP = np.uint64(0x7676767676767676)
_TOPS = np.uint64(0x8080808080808080)
_PAIRS = np.uint64(0x000000FF000000FF)
_S8 = np.uint64(8)
_S16 = np.uint64(16)


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


@_jit
def _digit_run(w):
    """(count, value) of the decimal digits that begin the little-endian word ``w``; count 8
    when all eight are."""
    w ^= _ZEROS
    # A byte is a digit when it is below 10 once '0' is taken off: then its top bit stays clear.
    stop = (((w & _LOW7) + _TO_TOP) | w) & _TOPS
    # No branches: the counts vary from number to number, and a mispredicted branch costs more
    # than the arithmetic. trailing_zeros(0) is 64.
    n = np.int64(trailing_zeros(stop)) >> 3
    # The digits to the top, zeros below them (a shift of 64, for no digits, in two halves: one
    # shift of 64 is undefined); then pairs, quads and the eight at once.
    s = np.uint64(64 - 8 * n)
    w = (w << (s >> _ONE)) << (s - (s >> _ONE))
    w = w * np.uint64(10) + (w >> _S8)
    w = ((w & _PAIRS) * np.uint64(100 + (1000000 << 32)) + ((w >> _S16) & _PAIRS) * np.uint64(1 + (10000 << 32)))
    return n, np.int64(w >> _S32)


@_inline
def _plain_number(buf, p, e):
    """A number at ``p`` of the plain form ``-?D+(.D+)?``, eight digits a step: (end, value,
    code) as :func:`_number` has them when code is 1 or 2 (at most 15 digits in all: exact as
    an integer) or 3 (up to 15 before and 15 after the point: finite, value not computed);
    code 0 for any other form, valid or not, which is the full scan's to read. Reads up to 40
    bytes past ``p`` whatever ``e`` is."""
    neg = buf[p] == 45
    q = p + 1 if neg else p
    n, m = _digit_run(_load8(buf, q))
    # Branches that go the same way for a field event after event are cheap.
    if n == 8:
        n2, m2 = _digit_run(_load8(buf, q + 8))
        m = m * _POW10_INT[n2] + m2
        n += n2
    r = q + n
    dot = buf[r] == 46
    f = fm = 0
    if dot:
        f, fm = _digit_run(_load8(buf, r + 1))
        if f == 8:
            f2, fm2 = _digit_run(_load8(buf, r + 9))
            fm = fm * _POW10_INT[f2] + fm2
            f += f2
    end = r + 1 + f if dot else r
    after = buf[end]
    # A leading zero ends the integer part (JSON's grammar, which _number keeps); digits past
    # e were read, so the number must end by e; an exponent is _number's.
    ok = 0 < n < 16 and f < 16 and (n == 1 or buf[q] != 48) and (f > 0 or not dot)
    if not ok or end > e or after == 101 or after == 69:
        return end, 0.0, 0
    if n + f > 15:
        return end, 0.0, 3
    # The same division as _number's: m below 10**15, so exact, and 10**f exact.
    v = float(m * _POW10_INT[f] + fm) / _POW10[f]
    # Times -1.0 is negation, bit for bit; a table, not a branch, as signs vary.
    return end, v * _SIGN[np.int64(neg & (dot | (m != 0)))], (2 if dot else 1)


