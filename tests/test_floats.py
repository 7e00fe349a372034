"""The exact number readers agree bit for bit with Python's float(), and with the readers they
replaced (:mod:`numbers_v0`) on what is a number at all."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

import numba as nb
import numbers_v0 as v0
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwire.stream.ingest import floats as fl

PAD = 64
SEPARATORS = [b",", b"}", b" ", b"]", b"\n"]


@nb.njit(cache=True)
def _run_number(buf, starts, ends, out_end, out_val, out_code):
    for i in range(starts.shape[0]):
        out_end[i], out_val[i], out_code[i] = fl.number(buf, starts[i], ends[i])


@nb.njit(cache=True)
def _run_plain(buf, starts, ends, out_end, out_val, out_code):
    for i in range(starts.shape[0]):
        out_end[i], out_val[i], out_code[i] = fl.plain_number(buf, starts[i], ends[i])


@nb.njit(cache=True)
def _run_old_number(buf, starts, ends, out_end, out_val, out_code):
    for i in range(starts.shape[0]):
        out_end[i], out_val[i], out_code[i] = v0._number(buf, starts[i], ends[i])


@nb.njit(cache=True)
def _run_old_plain(buf, starts, ends, out_end, out_val, out_code):
    for i in range(starts.shape[0]):
        out_end[i], out_val[i], out_code[i] = v0._plain_number(buf, starts[i], ends[i])


@nb.njit(cache=True)
def _run_convert(ws, qs, out_val, out_ok):
    for i in range(ws.shape[0]):
        out_val[i], out_ok[i] = fl.decimal_to_double(ws[i], qs[i])


def pack(texts: list[str], cut: np.ndarray | None = None, seed: int = 0):
    """The texts one after the other, each followed by a separator, then PAD zero bytes (as
    scan.pack pads a batch); each text's start and the end the readers are given (its length,
    or ``cut`` of it)."""
    rng = np.random.default_rng(seed)
    raw = [t.encode() for t in texts]
    seps = [SEPARATORS[k] for k in rng.integers(0, len(SEPARATORS), len(raw))]
    lengths = np.array([len(r) for r in raw], dtype=np.int64)
    starts = np.zeros(len(raw), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    buf = np.frombuffer(b"".join(r + s for r, s in zip(raw, seps)) + bytes(PAD), dtype=np.uint8)
    ends = starts + (lengths if cut is None else np.minimum(cut, lengths))
    return buf, starts, ends


def read(runner, buf, starts, ends):
    n = starts.shape[0]
    out = np.empty(n, np.int64), np.empty(n, np.float64), np.empty(n, np.int64)
    runner(buf, starts, ends, *out)
    return out


def bits(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).view(np.uint64)


def expected(texts: list[str], starts, end, code) -> np.ndarray:
    """Python's value of what a reader read: float() of the text, an integer's through int()
    (``-0`` is 0.0)."""
    out = np.full(len(texts), np.nan)
    for i, t in enumerate(texts):
        if code[i] in (1, 2):
            s = t[: end[i] - starts[i]]
            out[i] = float(int(s)) if code[i] == 1 else float(s)
    return out


def check_exact(texts, starts, result):
    """Every value read with code 1 or 2 is Python's, bit for bit; returns how many were."""
    end, val, code = result
    exact = (code == 1) | (code == 2)
    want = expected(texts, starts, end, code)
    bad = np.flatnonzero(exact & (bits(val) != bits(want)))
    assert bad.size == 0, [(texts[i], val[i], want[i], code[i]) for i in bad[:10]]
    return int(exact.sum())


def check_plain_is_number(new, plain):
    """Whatever plain_number reads, number reads to the same end, value and code."""
    nz = plain[2] != 0
    assert np.array_equal(plain[0][nz], new[0][nz])
    assert np.array_equal(plain[2][nz], new[2][nz])
    assert np.array_equal(bits(plain[1][nz]), bits(new[1][nz]))


def check_like_today(texts, buf, starts, ends):
    """The new readers against the scanner's: the same numbers (code 0 or not) at the same end,
    and the same code and value wherever today's reader computed one; plain_number reads at least
    what _plain_number reads, and only what number reads the same way."""
    new, old = read(_run_number, buf, starts, ends), read(_run_old_number, buf, starts, ends)
    differ = np.flatnonzero((new[2] == 0) != (old[2] == 0))
    assert differ.size == 0, [texts[i] for i in differ[:10]]
    assert np.array_equal(new[0], old[0])
    was = (old[2] == 1) | (old[2] == 2)
    assert np.array_equal(new[2][was], old[2][was])
    assert np.array_equal(bits(new[1][was]), bits(old[1][was]))
    plain, old_plain = read(_run_plain, buf, starts, ends), read(_run_old_plain, buf, starts, ends)
    took = old_plain[2] != 0
    assert np.all(plain[2][took] != 0)
    assert np.array_equal(plain[0][took], old_plain[0][took])
    was = (old_plain[2] == 1) | (old_plain[2] == 2)
    assert np.array_equal(plain[2][was], old_plain[2][was])
    assert np.array_equal(bits(plain[1][was]), bits(old_plain[1][was]))
    check_plain_is_number(new, plain)
    return new, plain


def check_all(texts, cut=None, seed=0):
    buf, starts, ends = pack(texts, cut, seed)
    new, plain = check_like_today(texts, buf, starts, ends)
    return check_exact(texts, starts, new), check_exact(texts, starts, plain), new, plain


# -- doubles as Python writes them ---------------------------------------------------------------

def random_doubles(rng, n: int) -> np.ndarray:
    """Doubles of every exponent (random bits), subnormals, and values typical of features."""
    raw = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False).view(np.float64)
    sub = (rng.integers(1, 2**52, n // 8, dtype=np.uint64) | (rng.integers(0, 2, n // 8, dtype=np.uint64) << 63))
    normal = rng.normal(0, 1, n)
    scaled = rng.normal(0, 1, n) * 10.0 ** rng.integers(-30, 30, n)
    uniform = rng.uniform(-1000, 1000, n)
    x = np.concatenate([raw, sub.view(np.float64), normal, scaled, uniform])
    return x[np.isfinite(x)]


def test_repr_of_random_doubles_reads_exactly():
    rng = np.random.default_rng(7)
    x = random_doubles(rng, 40_000)
    texts = [repr(v) for v in x.tolist()]
    exact, plain_exact, new, plain = check_all(texts)
    # Every repr is at most 17 significant digits: read unless past the scanner's range (1e300 on).
    far = new[2] == 0
    assert np.all(np.abs(x[far]) >= 1e300)
    assert np.all(new[2][~far] == 2), [t for t, c in zip(texts, new[2]) if c == 3][:10]
    assert np.array_equal(bits(new[1][~far]), bits(x[~far]))
    # Without an exponent (1e-4 <= |x| < 1e16) the plain reader reads them all.
    plain_form = np.array(["e" not in t for t in texts])
    assert np.all(plain[2][plain_form] == 2)
    assert exact == (~far).sum() and plain_exact == plain_form.sum()


def test_rounded_and_formatted_feature_values_read_exactly():
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.normal(0, 1, 20_000), rng.uniform(0, 1, 10_000), rng.lognormal(0, 3, 10_000)])
    k = rng.integers(0, 12, x.size)
    texts = [repr(round(v, int(d))) for v, d in zip(x.tolist(), k.tolist())]
    texts += [f"{v:.6f}" for v in x[:10_000].tolist()]
    texts += [f"{v:.17g}" for v in x[10_000:20_000].tolist()]
    texts += [f"{v:.{int(d)}e}" for v, d in zip(x[20_000:].tolist(), k[20_000:].tolist())]
    texts += [f"{v:.18f}" for v in x[:2_000].tolist()]  # up to 19 significant digits, or more
    exact, _, new, plain = check_all(texts, seed=1)
    digits = np.array([len(t.split("e")[0].replace("-", "").replace(".", "").lstrip("0")) for t in texts])
    assert np.all(new[2][digits <= 19] == 2)
    assert np.all(new[2][digits > 19] == 3)
    assert exact == (digits <= 19).sum()


# -- cases by hand ------------------------------------------------------------------------------

HAND = {
    # text: (code of number, code of plain_number)
    "0.30000000000000004": (2, 2),
    "9007199254740993": (3, 3),  # an integer from 2**53 on stays an int: not computed
    "9007199254740992": (3, 3),
    "9007199254740991": (1, 1),
    "-9007199254740991": (1, 1),
    "9007199254740993.0": (2, 2),  # halfway: to even, 9007199254740992.0
    "9007199254740995.0": (2, 2),  # halfway: to even, 9007199254740996.0
    "4503599627370496.5": (2, 2),  # halfway at ulp 1
    "4503599627370497.5": (2, 2),
    "1e23": (2, 0),
    "8.98846567431158e299": (2, 0),
    "2.2250738585072011e-308": (2, 0),
    "2.2250738585072014e-308": (2, 0),
    "2.225073858507201e-308": (2, 0),
    "4.9e-324": (2, 0),
    "5e-324": (2, 0),
    "2.4703282292062327e-324": (2, 0),  # just below half the smallest subnormal: 0.0
    "2.4703282292062328e-324": (2, 0),  # just above: 5e-324
    "1e-400": (2, 0),
    "-1e-400": (2, 0),
    "1.7976931348623157e308": (0, 0),  # past the scanner's range (digits + exponent > 300)
    "1.7976931348623159e308": (0, 0),
    "1e300": (0, 0),
    "1e299": (2, 0),
    "9.999999999999999e299": (2, 0),  # 1 + 299 digits: in range
    "0.1e300": (0, 0),
    "-0.0": (2, 2),
    "0": (1, 1),
    "-0": (1, 1),
    "0.0": (2, 2),
    "-0e5": (2, 0),
    "0e-400": (2, 0),
    "0e400": (0, 0),
    "1234567890123456789": (3, 0),  # 19 digits before the point: plain reads 16
    "1234567890123456.8": (2, 2),
    "0.12345678901234567": (2, 2),
    "123.45678901234568": (2, 2),
    "-1.2345678901234567e-05": (2, 0),
    "0.0001234567890123456789": (2, 2),  # 19 significant digits after four zeros
    "0.00012345678901234567891": (3, 3),  # 20
    "0.000123456789012345678": (2, 2),  # 18 significant digits after four zeros
    "9999999999999999999e-5": (2, 0),  # 19 nines
    "99999999999999999999e-5": (3, 0),  # 20 digits: not computed, never wrong
    "12345678901234567890": (3, 0),
    "1.2345678901234567890": (3, 3),
    "1.0000000000000000000": (3, 3),  # 20 digits, zeros or not
    "0.10000000000000000000": (3, 3),
    "0.00000000000000000001": (2, 2),
    "1.5": (2, 2),
    "-1.5E+3": (2, 0),
    "123456789012345678e-400": (2, 0),
    "1e-1000000": (0, 0),
    "1e-999999": (2, 0),
    "1e22": (2, 0),
    "1.5e-22": (2, 0),
    "7.2057594037927933e16": (2, 0),
}


@pytest.mark.parametrize("text", list(HAND))
def test_hand_cases(text):
    buf, starts, ends = pack([text])
    new, plain = check_like_today([text], buf, starts, ends)
    assert (new[2][0], plain[2][0]) == HAND[text]
    assert new[0][0] == len(text)
    if new[2][0] in (1, 2):
        want = float(int(text)) if new[2][0] == 1 else float(text)
        assert bits(new[1][0]) == bits(want), (new[1][0], want)
    check_exact([text], starts, plain)


def test_negative_zero_as_today():
    texts = ["-0", "-0.0", "-0e0", "-0.000e-3", "0", "-0.0e-400"]
    buf, starts, ends = pack(texts)
    for runner in (_run_number, _run_plain):
        _, val, code = read(runner, buf, starts, ends)
        signs = np.signbit(val)
        assert not signs[0] and not signs[4]  # -0 as an integer is 0
        assert all(signs[i] for i in (1, 2, 3, 5) if code[i] == 2)


def test_invalid_forms_are_not_numbers():
    texts = ["01", "1.", ".5", "1e", "-", "--1", "1.5e+", "+1", "-.5", "1.e5", "e5", "-e", "0x10", "1_0",
             "NaN", "Infinity", "-Infinity", "", "1e+-5", "00", "-01.5", "1.5.5", "1ee5"]
    _, _, new, plain = check_all(texts)
    # valid prefixes ("01" reads 0, "1.5.5" reads 1.5) are the scanner's as today, checked above.
    for t, c, pc in zip(texts, new[2], plain[2]):
        if t in ("1.", ".5", "1e", "-", "--1", "1.5e+", "+1", "-.5", "1.e5", "e5", "-e", "", "1e+-5", "1ee5"):
            assert c == 0 and pc == 0, t


# -- the conversion itself ---------------------------------------------------------------------

def convert(ws: list[int], qs: list[int]):
    w = np.array(ws, dtype=np.uint64)
    q = np.array(qs, dtype=np.int64)
    val, ok = np.empty(w.size), np.empty(w.size, np.bool_)
    _run_convert(w, q, val, ok)
    return val, ok


def check_conversion(ws, qs):
    val, ok = convert(ws, qs)
    want = np.array([float(f"{w}e{q}") for w, q in zip(ws, qs)])
    finite = np.isfinite(want)
    assert not ok[~finite].any()
    assert ok[finite].all()  # the 128-bit product always decides for a 64-bit mantissa
    bad = np.flatnonzero(bits(val[finite]) != bits(want[finite]))
    assert bad.size == 0, [(ws[i], qs[i]) for i in np.flatnonzero(finite)[bad[:10]]]


def test_conversion_of_random_mantissas_and_exponents():
    rng = np.random.default_rng(3)
    n = 60_000
    digits = rng.integers(1, 20, n)
    ws = [int(x) for x in (rng.random(n) * 10.0 ** digits.astype(float)).astype(np.uint64)]
    ws = [min(w, 10**19 - 1) for w in ws] + [2**64 - 1, 10**19 - 1, 1, 2**53, 2**53 + 1]
    qs = rng.integers(fl.Q_MIN - 10, fl.Q_MAX + 10, len(ws)).tolist()
    # the edges: subnormals, the smallest normal, the largest double, overflow
    qs[-5:] = [-350, -343, -324, 292, 289]
    near = rng.integers(10**16, 10**19, 4000, dtype=np.uint64).tolist()
    ws += near
    qs += rng.integers(-345, -300, 2000).tolist() + rng.integers(280, 292, 2000).tolist()
    # past 19 digits, up to 2**64: still exact
    ws += rng.integers(10**19, 2**64, 4000, dtype=np.uint64, endpoint=False).tolist()
    qs += rng.integers(fl.Q_MIN - 2, fl.Q_MAX + 2, 4000).tolist()
    check_conversion(ws, qs)


def halfway_cases(rng):
    """Mantissas and exponents whose value lies exactly halfway between two doubles: an odd
    54-bit number times a power of two, written with a decimal exponent in [-4, 23]."""
    ws, qs = [], []
    for q in range(0, 24):
        lo_t, hi_t = -(-(2**53) // 5**q), (2**54) // 5**q
        for t in rng.integers(lo_t, hi_t, 40, endpoint=True).tolist():
            t |= 1
            if not 2**53 <= t * 5**q < 2**54:
                continue
            for a in range(q, q + 12):
                w = t * 2 ** (a - q)
                if w < 10**19:
                    ws += [w, w - 1, w + 1]
                    qs += [q, q, q]
    for o in (rng.integers(2**53, 2**54, 400) | 1).tolist():
        for a in range(1, 5):
            w = o * 5**a
            if w < 10**19:
                ws += [w, w - 1, w + 1]
                qs += [-a, -a, -a]
    return ws, qs


def test_conversion_rounds_halfway_to_even():
    ws, qs = halfway_cases(np.random.default_rng(5))
    assert len(ws) > 1000
    check_conversion(ws, qs)
    texts = [f"{w}e{q}" for w, q in zip(ws, qs)] + [f"{w}.0" for w in ws if w < 10**18]
    exact, _, new, _ = check_all(texts, seed=2)
    assert np.all(new[2] == 2)


def near_halfway_cases(rng, n: int):
    """Decimals of 17 to 19 digits just below and just above a point halfway between two
    doubles, subnormal or normal: the hardest to round."""
    ws, qs = [], []
    with localcontext() as ctx:
        ctx.prec = 1200  # a subnormal's halfway point has 767 significant digits
        mids = [Decimal(2 * int(k) + 1) * Decimal(2) ** -1075 for k in rng.integers(0, 2**52, n)]
        mids += [Decimal(2 * int(m) + 1) * Decimal(2) ** (int(e) - 1)
                 for m, e in zip(rng.integers(2**52, 2**53, n), rng.integers(-1074, 971, n))]
        for d in mids:
            for digits in (17, 18, 19):
                q = d.adjusted() - digits + 1
                for rounding in (ROUND_FLOOR, ROUND_CEILING):
                    w = int(d.scaleb(-q).to_integral_value(rounding=rounding))
                    ws.append(w // 10 if w >= 10**19 else w)
                    qs.append(q + 1 if w >= 10**19 else q)
    return ws, qs


def test_conversion_near_halfway_points():
    ws, qs = near_halfway_cases(np.random.default_rng(13), 1000)
    check_conversion(ws, qs)
    texts = [f"{w}e{q}" for w, q in zip(ws, qs)]
    exact, _, new, _ = check_all(texts, seed=6)
    assert exact == (new[2] != 0).sum() > 10_000


# -- the grammar, and forms that are not numbers -----------------------------------------------

json_number = st.from_regex(r"\A-?(0|[1-9][0-9]{0,22})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,4})?\Z")
near_number = st.text(st.sampled_from("0123456789.-+eE"), min_size=1, max_size=26)
tail = st.text(st.sampled_from("0123456789.-+eEx ,}\x00"), max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(json_number, json_number, near_number), tail, st.integers(0, 30)),
                min_size=1, max_size=60))
def test_generated_numbers(items):
    texts = [a + b for a, b, _ in items]
    check_all(texts)
    cut = np.array([c for _, _, c in items], dtype=np.int64)
    check_all(texts, cut=cut, seed=3)


def test_random_strings_classified_as_today():
    """Strings of number characters, mutated numbers and cut ends: the same numbers as today."""
    rng = np.random.default_rng(9)
    alphabet = np.frombuffer(b"0123456789000.-+eE", dtype=np.uint8)
    lengths = rng.integers(1, 28, 60_000)
    texts = [bytes(alphabet[rng.integers(0, alphabet.size, k)]).decode() for k in lengths]
    x = random_doubles(rng, 8_000)
    for v in x.tolist():
        t = list(repr(v))
        i = int(rng.integers(0, len(t)))
        t[i] = chr(int(rng.choice(alphabet)))
        texts.append("".join(t))
    cut = rng.integers(1, 30, len(texts))
    check_all(texts, seed=4)
    check_all(texts, cut=cut, seed=5)


def test_an_exponent_past_a_million_is_not_read_short():
    """A million zeros after the point, then an exponent of eight digits: the scanner's reader
    keeps the exponent's first seven digits and computes a wrong value (0.1; the number is past
    any double); number keeps it a number, code 3, without a value."""
    text = "0." + "0" * 1_000_000 + "1e10000005"
    buf, starts, ends = pack([text])
    old = read(_run_old_number, buf, starts, ends)
    new = read(_run_number, buf, starts, ends)
    assert (old[2][0], old[1][0]) == (2, 0.1)
    assert (new[0][0], new[2][0]) == (old[0][0], 3) and old[0][0] == len(text)
