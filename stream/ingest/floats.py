"""Exact decimal-to-double conversion for the batch scanner: numbers of up to 19 significant digits.

    from driftwire.stream.ingest.floats import number, plain_number, decimal_to_double

    end, value, code = number(buf, p, e)        # strict JSON grammar, as scan._number has it
    end, value, code = plain_number(buf, p, e)  # -?D+(.D+)?, eight digits a step (template slots)
    value, ok = decimal_to_double(w, q)         # w * 10**q correctly rounded, w < 10**19

Python writes a float with ``repr``: up to 17 significant digits (``0.30000000000000004``), past
what Clinger's fast path (a mantissa below 2**53, a power of ten up to 10**22) reads exactly.
:func:`decimal_to_double` is the Eisel-Lemire algorithm: the mantissa, normalized to 64 bits,
times a 128-bit truncated power of five gives the 53 bits of the double and enough bits below
them to round correctly (round half to even), or says it cannot decide (then the caller leaves
the number to the slow path). The two readers are drop-in replacements of the scanner's
``_number`` and ``_plain_number``: the same contract and the same classification of what is a
number (code 0 or not), with a value computed in more cases. Every value they return with code 1
or 2 is bit for bit ``float(text)``.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

# As the scanner's kernels: no reference counting in the called helpers, small readers inlined
# into the scan loops (a call per token costs more than the token).
_jit = nb.njit(cache=True, nogil=True, _nrt=False)
_inline = nb.njit(cache=True, nogil=True, inline="always")

#: the decimal exponents of the table: below -342 any 19-digit mantissa rounds to 0.0, above
#: 308 any non-zero one overflows
Q_MIN, Q_MAX = -342, 308


def _powers_of_five() -> tuple[np.ndarray, np.ndarray]:
    """5**q for q in [Q_MIN, Q_MAX] as 128-bit numbers with their top bit set, split in (high,
    low) 64-bit words: truncated for q >= 0 (exact up to 5**55); for q < 0 the reciprocal
    2**k / 5**-q rounded up (q >= -27) or computed to twice the width, one added, then truncated."""
    hi = np.empty(Q_MAX - Q_MIN + 1, dtype=np.uint64)
    lo = np.empty_like(hi)
    for i, q in enumerate(range(Q_MIN, Q_MAX + 1)):
        if q >= 0:
            v = 5**q
            bits = v.bit_length()
            v = v << (128 - bits) if bits <= 128 else v >> (bits - 128)
        else:
            d = 5**-q
            z = d.bit_length()  # 2**(z-1) < d < 2**z: d is odd and above 1
            v = (1 << (z + 127)) // d + 1 if q >= -27 else (1 << (2 * z + 128)) // d + 1
            v >>= v.bit_length() - 128
        assert v.bit_length() == 128
        hi[i] = v >> 64
        lo[i] = v & 0xFFFFFFFFFFFFFFFF
    return hi, lo


_P5_HI, _P5_LO = _powers_of_five()
#: 10**k as uint64, k <= 19
_P10_U = np.array([10**k for k in range(20)], dtype=np.uint64)
#: 10**(19 - k): a mantissa below it takes k more digits and stays below 10**19
_ROOM = np.array([10 ** (19 - k) for k in range(9)], dtype=np.uint64)
#: 10**k for k <= 22: exact in float64 (Clinger's fast path divides or multiplies by one)
_POW10 = np.array([10.0**k for k in range(23)])
_SIGN = np.array([1.0, -1.0])

_EXACT = np.uint64(2**53)
_TEN15 = np.uint64(10**15)
_TEN18 = np.uint64(10**18)
_HIDDEN = np.uint64(1 << 52)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_LOW32 = np.uint64(0xFFFFFFFF)
_LOW9 = np.uint64(0x1FF)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U3 = np.uint64(3)
_U8 = np.uint64(8)
_U9 = np.uint64(9)
_U10 = np.uint64(10)
_U16 = np.uint64(16)
_U32 = np.uint64(32)
_U52 = np.uint64(52)
_U63 = np.uint64(63)
# Eight ASCII bytes at once: '0' in each byte, the low seven bits of each, 0x76 (a byte of ten
# or more plus it reaches the top bit), the top bit of each; the masks of digit pairs and quads.
_ZEROS = np.uint64(0x3030303030303030)
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_TO_TOP = np.uint64(0x7676767676767676)
_TOPS = np.uint64(0x8080808080808080)
_PAIRS = np.uint64(0x00FF00FF00FF00FF)
_QUADS = np.uint64(0x0000FFFF0000FFFF)
_U100 = np.uint64(100)
_U10000 = np.uint64(10000)
_INF = np.inf


@_jit
def _mul128(a, b):
    """The 128-bit product of two uint64 as (high, low) words, from 32-bit halves."""
    a0, a1 = a & _LOW32, a >> _U32
    b0, b1 = b & _LOW32, b >> _U32
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    # The middle column: three terms below 2**32 each, no overflow.
    mid = (p00 >> _U32) + (p01 & _LOW32) + (p10 & _LOW32)
    return p11 + (p01 >> _U32) + (p10 >> _U32) + (mid >> _U32), (mid << _U32) | (p00 & _LOW32)


@_jit
def decimal_to_double(w, q):
    """``w * 10**q`` (``w`` a uint64, ``q`` an integer) rounded to the nearest double, ties to
    even: (value, ok). ok is False when the value overflows (value inf) or when the 128-bit
    product cannot decide the rounding (value 0.0; never seen, and proved not to happen for a
    64-bit ``w``); an underflow is 0.0 or a subnormal, correctly rounded."""
    if w == _U0 or q < Q_MIN:
        return 0.0, True
    if q > Q_MAX:
        return _INF, False
    lz = leading_zeros(w)
    w = w << lz
    i = q - Q_MIN
    hi, lo = _mul128(w, _P5_HI[i])
    # The low nine bits of the high word (below the 53 bits and the rounding bit) all ones: a
    # carry from what the truncated product left out could reach the rounding bit; add the
    # product with the power's low word.
    if hi & _LOW9 == _LOW9:
        hi2, _ = _mul128(w, _P5_LO[i])
        low = lo + hi2
        if low < lo:
            hi += _U1
        lo = low
        # Still undecided: within 5**q's exact range the product is exact, else give up.
        if hi & _LOW9 == _LOW9 and lo == _ALL and not -27 <= q <= 55:
            return 0.0, False
    upper = hi >> _U63
    shift = upper + _U9
    m = hi >> shift
    # The biased binary exponent: floor(q * log2(10)) by a fixed-point product, plus the
    # position of the leading one of the product.
    e2 = ((217706 * q) >> 16) + 63 + np.int64(upper) - np.int64(lz) + 1023
    if e2 <= 0:
        # Subnormal, or 0. No decimal of 19 digits falls halfway between two subnormals, so
        # rounding half up on the truncated product is exact rounding.
        if 1 - e2 >= 64:
            return 0.0, True
        m >>= np.uint64(1 - e2)
        m = (m + (m & _U1)) >> _U1
        # 2**52 after rounding is the smallest normal: its bits are the same.
        return np.uint64(m).view(np.float64), True
    # Exactly halfway (possible only for q in [-4, 23]): round down to even.
    if lo <= _U1 and -4 <= q <= 23 and m & _U3 == _U1 and (m << shift) == hi:
        m &= ~_U1
    m = (m + (m & _U1)) >> _U1
    if m >= _EXACT:
        m = _HIDDEN
        e2 += 1
    if e2 >= 2047:
        return _INF, False
    bits = (np.uint64(e2) << _U52) | (m & ~_HIDDEN)
    return np.uint64(bits).view(np.float64), True


@_inline
def number(buf, p, e):
    """A number in strict JSON grammar at ``p``: (end, value, code), as the scanner's ``_number``.
    code 0: not a number (end -1 for a malformed one; end past it for one the scanner leaves to
    the slow path: ``intdigits + exponent > 300`` or an exponent at or below -1,000,000);
    1: an integer below 2**53 in magnitude, value exact (``-0`` is 0.0); 2: a fraction or
    exponent form, value correctly rounded (``-0.0`` is -0.0); 3: valid and surely finite in
    float64, value not computed (an integer of 2**53 or more, more than 19 significant digits,
    or a rounding the table cannot decide). Reads nothing at or past ``e``."""
    neg = False
    if p < e and buf[p] == 45:
        neg = True
        p += 1
    if p >= e:
        return -1, 0.0, 0
    # The digits without the point, leading zeros aside, while they fit in 19: w, with
    # ``frac`` of them after the point; ``many`` when more came.
    w = _U0
    many = False
    intdigits = 0
    c = buf[p]
    if c == 48:
        p += 1
        intdigits = 1
    elif 49 <= c <= 57:
        while p < e and 48 <= buf[p] <= 57:
            if w < _TEN18:
                w = w * _U10 + np.uint64(buf[p] - 48)
            else:
                many = True
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
            if w < _TEN18:
                w = w * _U10 + np.uint64(buf[p] - 48)
                frac += 1
            else:
                many = True
            p += 1
    ex = 0
    dropped = False
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
            else:
                dropped = True
            p += 1
        if eneg:
            ex = -ex
    # Below 2**53 with all its digits: the scanner's exact forms, read as it reads them.
    exact = not many and w < _EXACT
    if is_int and exact:
        v = float(w)
        # An integer has no negative zero: -0 is 0, as int("-0") and msgspec have it.
        return p, (-v if neg and w != _U0 else v), 1
    e10 = ex - frac
    # A number when Clinger's fast path reads it (as the scanner's _number) or when it is below
    # 10**300 by its digit count: finite whatever its digits (an underflow is 0.0).
    if exact and -22 <= e10 <= 22:
        if dropped:
            # An exponent of more than a million digits' worth: a number the scanner takes but
            # whose value it does not compute.
            return p, 0.0, 3
        # The fast path by digit count, not by value: a field's numbers of a form (six
        # decimals, or repr's 16 and 17 digits) then take one path, the branch predicted.
        if w < _TEN15:
            v = float(w) * _POW10[e10] if e10 >= 0 else float(w) / _POW10[-e10]
            return p, (-v if neg else v), 2
    elif not (intdigits + ex <= 300 and -1_000_000 < ex):
        return p, 0.0, 0
    # An integer of 2**53 or more keeps code 3: it is an int, not a float, to Python.
    if not many and not is_int:
        v, ok = decimal_to_double(w, e10)
        if ok:
            return p, (-v if neg else v), 2
    return p, 0.0, 3


@_jit
def _word(buf, p):
    """``buf[p:p+8]`` as a little-endian word (one load once compiled)."""
    # An unsigned index: no negative-index wraparound per byte, which would keep the compiler
    # from joining the eight byte loads into one.
    q = np.uint64(p)
    x = _U0
    for j in range(8):
        x |= np.uint64(buf[q + np.uint64(j)]) << np.uint64(8 * j)
    return x


@_jit
def _leading_digits(x):
    """(count, value as uint64) of the decimal digits that begin the little-endian word ``x``;
    count 8 when all eight are."""
    x ^= _ZEROS
    # A byte is a digit when it is below 10 once '0' is taken off: then its top bit stays clear.
    stop = (((x & _LOW7) + _TO_TOP) | x) & _TOPS
    n = np.int64(trailing_zeros(stop)) >> 3  # trailing_zeros(0) is 64
    # The digits to the top bytes, zeros below (a shift of 64, for no digits, in two halves:
    # one shift of 64 is undefined): the word reads as eight digits with leading zeros.
    s = np.uint64(64 - 8 * n)
    x = (x << (s >> _U1)) << (s - (s >> _U1))
    x = (x * _U10 + (x >> _U8)) & _PAIRS  # two digits in each 16-bit lane
    x = (x * _U100 + (x >> _U16)) & _QUADS  # four in each 32-bit lane
    return n, (x & _LOW32) * _U10000 + (x >> _U32)


@_inline
def plain_number(buf, p, e):
    """A number at ``p`` of the plain form ``-?D+(.D+)?``, eight digits a step: (end, value,
    code) as :func:`number` has them, or code 0 for a form it does not read (which the full
    scan reads). Reads up to 16 digits before the point and 23 after it: code 1 for an integer
    below 2**53, 2 for a fraction of up to 19 significant digits (``0.12345678901234567``,
    ``123.45678901234568``: value correctly rounded), 3 for a longer fraction or a larger
    integer (valid and finite, value not computed). Whatever it reads with a code other than
    0, :func:`number` reads to the same (end, value, code). Reads up to 42 bytes past ``p``
    (``buf[p:p+43]``) whatever ``e`` is: ``p`` must be below ``e``."""
    neg = buf[p] == 45
    q = p + 1 if neg else p
    n, m = _leading_digits(_word(buf, q))
    # Branches that go the same way for a field event after event are cheap.
    if n == 8:
        n2, m2 = _leading_digits(_word(buf, q + 8))
        m = m * _P10_U[n2] + m2
        n += n2
    r = q + n
    dot = buf[r] == 46
    # The mantissa, and whether it reached 10**19 (then its value is past the uint64 and wrong).
    w = m
    big = False
    f = 0
    if dot:
        f, c = _leading_digits(_word(buf, r + 1))
        big = m >= _ROOM[f]
        w = m * _P10_U[f] + c
        if f == 8:
            k, c = _leading_digits(_word(buf, r + 9))
            big |= w >= _ROOM[k]
            w = w * _P10_U[k] + c
            f += k
            if k == 8:
                k, c = _leading_digits(_word(buf, r + 17))
                big |= w >= _ROOM[k]
                w = w * _P10_U[k] + c
                f += k
    end = r + 1 + f if dot else r
    after = buf[end]
    # A leading zero ends the integer part (JSON's grammar); a digit after the last one read
    # (17 before the point, 24 after) is a longer number; digits past e were read, so the
    # number must end by e; an exponent is the full scan's.
    ok = n > 0 and (n == 1 or buf[q] != 48) and (f > 0 or not dot) and end <= e
    if not ok or 48 <= after <= 57 or after == 101 or after == 69:
        return end, 0.0, 0
    if not dot:
        if m < _EXACT:
            # -0 is 0.0, as for number(); times -1.0 is negation bit for bit, a table not a branch.
            return end, float(m) * _SIGN[np.int64(neg & (m != _U0))], 1
        return end, 0.0, 3
    if big:
        return end, 0.0, 3
    if w < _TEN15 and f <= 22:
        # Clinger's fast path, number()'s division (the mantissa and 10**f exact in float64),
        # chosen by digit count as number() does.
        v = float(w) / _POW10[f]
    else:
        v, good = decimal_to_double(w, -np.int64(f))
        if not good:
            return end, 0.0, 3
    return end, v * _SIGN[np.int64(neg)], 2
