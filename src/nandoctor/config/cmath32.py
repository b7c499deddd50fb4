"""C float arithmetic as Caffe's x86-64 Linux build performs it, vectorised with numpy.

Caffe keeps the learning rate in ``float`` and mixes three kinds of arithmetic:
plain float operations, ``pow(float, int)`` which C++ evaluates in **double**
(glibc ``pow``) before the result is rounded to float once, and ``powf``/``expf``.
numpy alone does not reproduce these bit for bit: its float64 ``power``/``exp``
use SIMD code that differs from glibc in the last bits (about 5% of inputs on an
AVX-512 machine), and its float32 ``power`` differs from ``powf`` in printed digits.

So every transcendental here is computed in two passes: a fast numpy
approximation, then an exact scalar recomputation (Python's ``math`` module,
which is the platform libm, i.e. glibc on Linux) for the few elements whose
float32 result the approximation cannot decide (those lying within a tiny
relative distance of a float32 rounding boundary). ``powf(x, y)`` and
``expf(x)`` are emulated as the double result rounded to float, which is what
glibc's implementations return except in rare last-bit cases.

NaN signs follow x86 SSE: an invalid operation (0/0, inf-inf, 0*inf, pow of a
negative base to a non-integer power) produces the *default NaN*, whose sign bit
is set and which glibc prints as ``-nan``; an operation with a NaN operand returns
that operand (the first one if both are NaN), keeping its sign.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32
F64 = np.float64
DEFAULT_NAN = -math.nan  # x86 default NaN: sign bit set
FLT_MAX = float(np.finfo(np.float32).max)

# Relative width of the "cannot decide" zone around float32 rounding boundaries.
# The numpy approximations are accurate to a few 1e-16 relative (pow: the error
# grows with |y*log(x)|, which the zone accounts for).
_ZONE = 2.0**-44


# ---------------------------------------------------------------------------
# NaN handling
# ---------------------------------------------------------------------------


def _fix_nans(result: np.ndarray, a, b) -> np.ndarray:
    """Give NaN results x86's sign: first NaN operand propagates, else the default NaN."""
    bad = np.isnan(result)
    if not bad.any():
        return result
    a_b = np.broadcast_to(np.asarray(a, dtype=result.dtype), result.shape)
    b_b = np.broadcast_to(np.asarray(b, dtype=result.dtype), result.shape)
    default = np.array(DEFAULT_NAN, dtype=result.dtype)
    fixed = np.where(np.isnan(a_b), a_b, np.where(np.isnan(b_b), b_b, default))
    out = np.array(result, copy=True)
    out[bad] = fixed[bad]
    return out


def _binop(op, a, b, dtype) -> np.ndarray:
    a = np.asarray(a, dtype=dtype)
    b = np.asarray(b, dtype=dtype)
    with np.errstate(all="ignore"):
        r = np.asarray(op(a, b), dtype=dtype)
    return _fix_nans(r, a, b)


def f32_add(a, b) -> np.ndarray:
    return _binop(np.add, a, b, F32)


def f32_sub(a, b) -> np.ndarray:
    return _binop(np.subtract, a, b, F32)


def f32_mul(a, b) -> np.ndarray:
    return _binop(np.multiply, a, b, F32)


def f32_div(a, b) -> np.ndarray:
    return _binop(np.divide, a, b, F32)


# ---------------------------------------------------------------------------
# Scalar C pow / exp (double), the exact reference for the vector code
# ---------------------------------------------------------------------------


def _is_odd_integer(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and math.fmod(y, 2.0) != 0.0


def c_pow(x: float, y: float) -> float:
    """C99 ``pow(double, double)`` (Annex F special cases, x86 NaN signs, glibc values)."""
    if y == 0.0 or x == 1.0:
        return 1.0
    if math.isnan(x):
        return x
    if math.isnan(y):
        return y
    if x == 0.0:
        odd = _is_odd_integer(y)
        if y < 0:
            return math.copysign(math.inf, x) if odd else math.inf
        return math.copysign(0.0, x) if odd else 0.0
    if math.isinf(y):
        if x == -1.0:
            return 1.0
        if (abs(x) < 1.0) == (y < 0):
            return math.inf
        return 0.0
    if math.isinf(x):
        odd = _is_odd_integer(y)
        if x > 0:
            return math.inf if y > 0 else 0.0
        if y > 0:
            return -math.inf if odd else math.inf
        return -0.0 if odd else 0.0
    if x < 0 and y != math.floor(y):
        return DEFAULT_NAN
    try:
        return math.pow(x, y)
    except OverflowError:
        return -math.inf if (x < 0 and _is_odd_integer(y)) else math.inf


def c_exp(x: float) -> float:
    """C ``exp(double)``: NaN propagates, overflow gives inf, underflow 0."""
    if math.isnan(x):
        return x
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def c_mul(a: float, b: float) -> float:
    """Double multiply with x86 NaN signs."""
    r = a * b
    if math.isnan(r):
        if math.isnan(a):
            return a
        if math.isnan(b):
            return b
        return DEFAULT_NAN
    return r


def to_f32(x: float) -> np.float32:
    """C's double -> float conversion (round to nearest, NaN keeps its sign)."""
    with np.errstate(all="ignore"):
        return np.float32(x)


# ---------------------------------------------------------------------------
# Vector helpers with exact fallback
# ---------------------------------------------------------------------------


def _undecided(approx: np.ndarray, zone) -> np.ndarray:
    """Elements whose float32 rounding could change within +-zone (relative)."""
    with np.errstate(all="ignore"):
        lo = (approx * (1.0 - zone)).astype(F32)
        hi = (approx * (1.0 + zone)).astype(F32)
    return (lo != hi) & np.isfinite(approx)


def scaled_pow_f32(base: np.float32, gamma: np.float32, k: np.ndarray) -> np.ndarray:
    """``float(base * pow(double(gamma), k))`` for integer k: Caffe's step/exp/multistep rate."""
    k = np.asarray(k, dtype=np.int64)
    b, g = float(base), float(gamma)

    def exact(kk: int) -> np.float32:
        return to_f32(c_mul(b, c_pow(g, float(kk))))

    if k.size == 0:
        return np.zeros(0, dtype=F32)
    kmin, kmax = int(k.min()), int(k.max())
    if kmax - kmin < 65536:
        # Few distinct exponents (step, multistep, short runs): exact table lookup.
        table = np.array([exact(kk) for kk in range(kmin, kmax + 1)], dtype=F32)
        return table[k - kmin]
    return _scaled_pow_long(b, g, k, kmin, kmax, exact)


def _scaled_pow_long(b: float, g: float, k: np.ndarray, kmin: int, kmax: int, exact) -> np.ndarray:
    """Long exponent ranges: pow(g, k) = pow(g, q*B) * pow(g, r) from two exact tables."""
    if math.isnan(b) or math.isnan(g) or math.isinf(g) or g == 0.0:
        # pow(g, k) then depends only on the sign and parity of k: -2, -1, 0, 1, 2 stand for all.
        odd = k % 2 == 1
        code = np.where(k == 0, 0, np.where(k > 0, np.where(odd, 1, 2), np.where(odd, -1, -2)))
        lut = np.array([exact(c) for c in (-2, -1, 0, 1, 2)], dtype=F32)
        return lut[code + 2]
    block = 4096
    ag = abs(g)
    qmin, qmax = kmin // block, kmax // block
    t_r = np.array([c_pow(ag, float(i)) for i in range(block)], dtype=F64)
    t_q = np.array([c_pow(ag, float(j * block)) for j in range(qmin, qmax + 1)], dtype=F64)
    contiguous = k.size == kmax - kmin + 1 and k[0] == kmin and k[-1] == kmax
    with np.errstate(all="ignore"):
        if contiguous:  # a plain range of iterations: an outer product, no gathers
            start = kmin - qmin * block
            d = np.multiply.outer(t_q, t_r).ravel()[start : start + k.size]
        else:
            q = k // block
            d = t_q[q - qmin] * t_r[k - q * block]
        if g < 0:
            d[k % 2 == 1] *= -1.0
        d *= b
        out = d.astype(F32)
    suspect = _undecided(d, _ZONE)
    # Blocks whose table entry lies beyond the double range while the true power may not,
    # and (when base is 0 or inf, where 0*inf decides NaN) powers near the double range limits.
    log2g = math.log2(ag)
    q_lo = np.array([j * block * log2g for j in range(qmin, qmax + 1)])
    q_hi = q_lo + block * log2g
    est_min, est_max = np.minimum(q_lo, q_hi), np.maximum(q_lo, q_hi)
    risky = ~(np.abs(t_q) < math.inf) & (est_min < 1020.0)
    if math.isinf(b):  # elsewhere a power below 2**-1022 gives a float 0 either way
        risky |= (t_q < 2.3e-308) & (est_max > -1070.0)
    if b == 0.0 or math.isinf(b):
        risky |= (est_min < 1030.0) & (est_max > 1018.0)
        risky |= (est_min < -1069.0) & (est_max > -1081.0)
    suspect |= np.isnan(out)
    idx = np.flatnonzero(suspect)
    if risky.any():
        q_of = np.arange(qmin, qmax + 1)[risky]
        in_risky = np.isin(k // block, q_of)
        idx = np.union1d(idx, np.flatnonzero(in_risky))
    if idx.size:
        out[idx] = [exact(int(kk)) for kk in k[idx]]
    return out


def powf(x: np.ndarray, y: float) -> np.ndarray:
    """glibc ``powf(x, y)`` for a float32 array x and one float32 exponent y."""
    x = np.asarray(x, dtype=F32)
    yf = float(F32(y))

    def exact(xv: float) -> np.float32:
        return to_f32(c_pow(xv, yf))

    x64 = x.astype(F64)
    if not math.isfinite(yf) or yf == 0.0:  # the result depends on few properties of x
        return _map_unique(exact, x64).reshape(x.shape)
    with np.errstate(all="ignore"):
        t = yf * np.log(np.abs(x64))
        approx = np.exp(t)  # pow(|x|, y); beyond the double range it is inf/0, as powf is
    negative = x64 < 0.0
    if yf == math.floor(yf):  # integer power: the sign follows the parity
        if _is_odd_integer(yf):
            approx = np.where(negative, -approx, approx)
    else:  # a negative base to a fractional power is invalid: the default NaN
        approx[negative & np.isfinite(x64)] = DEFAULT_NAN
    with np.errstate(all="ignore"):
        out = approx.astype(F32)
    # NaN bases propagate (y is neither 0 nor NaN here); inf and zero bases give one value per sign.
    nan = np.isnan(x)
    out[nan] = x[nan]
    for value in (math.inf, -math.inf, 0.0, -0.0):
        same = (x64 == value) & (np.signbit(x64) == (math.copysign(1.0, value) < 0))
        if same.any():
            out[same] = exact(value)
    zone = _ZONE * (1.0 + np.abs(np.where(np.isfinite(t), t, 0.0)))
    undecided = np.flatnonzero(_undecided(approx, zone) & np.isfinite(x64) & (x64 != 0.0))
    if undecided.size:
        out[undecided] = _map_unique(exact, x64[undecided])
    return out


def expf(x: np.ndarray) -> np.ndarray:
    """glibc ``expf(x)`` for a float32 array."""
    x = np.asarray(x, dtype=F32)
    x64 = x.astype(F64)
    with np.errstate(all="ignore"):
        approx = np.exp(x64)
        out = approx.astype(F32)
    special = np.isnan(x64) | (x64 > 88.0) | (x64 < -103.0)
    # Far outside float range the answer is certain (inf or 0); only the edges need care.
    special &= ~((x64 > 90.0) | (x64 < -105.0))
    idx = np.flatnonzero(special | _undecided(approx, _ZONE))
    if idx.size:
        out[idx] = _map_unique(lambda v: to_f32(c_exp(v)), x64[idx])
    return out


def _map_unique(fn, values: np.ndarray) -> np.ndarray:
    """Apply a scalar function once per distinct bit pattern (so -0/+0 and NaN signs stay apart)."""
    bits, inverse = np.unique(np.ascontiguousarray(values, dtype=F64).view(np.uint64), return_inverse=True)
    return np.array([fn(float(v)) for v in bits.view(F64)], dtype=F32)[inverse.reshape(-1)]


# ---------------------------------------------------------------------------
# Reading and printing
# ---------------------------------------------------------------------------


def protobuf_float(value: float) -> np.float32:
    """A float field as protobuf's text parser stores it: parsed as double, then
    ``SafeDoubleToFloat`` (anything beyond FLT_MAX becomes inf, not FLT_MAX)."""
    if math.isnan(value):
        return to_f32(value)
    if value > FLT_MAX:
        return F32(math.inf)
    if value < -FLT_MAX:
        return F32(-math.inf)
    return to_f32(value)


def ostream_float(x) -> str:
    """A float printed by C++ ``ostream <<`` with the default precision (6, %g style),
    as glibc/libstdc++ print it: ``0.00777822``, ``1e-05``, ``-nan``, ``inf``, ``-0``."""
    v = float(x)
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    if math.isinf(v):
        return "-inf" if v < 0 else "inf"
    return format(v, "g")
