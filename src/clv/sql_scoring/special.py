"""Special functions in plain SQL: the normal quantile function and the Gaussian
hypergeometric function, as layers of columns (:data:`clv.sql_scoring.nodes.Layer`).

``ndtri`` is Wichura's rational approximation AS241 (PPND16, Applied Statistics 37, 1988),
relative error about 1e-16 on (0, 1), in its three regions (central, tail, far tail).

``hyp2f1(a, b; c; z)`` is needed for BG/NBD's expected purchases with fixed ``a``, ``b`` (from
the fit), ``c`` that grows with the customer's frequency and ``0 <= z < 1``. It is the power
series, summed in Horner form from the innermost term out: each term is the previous one
times ``(a + k)(b + k) / ((k + 1)(c + k)) * z``, so no term is ever computed as a product of
tiny numbers (PostgreSQL stops on a float underflow). The number of terms is fixed when the
SQL is compiled, from the largest ``z`` and the smallest ``c`` the data can have, so that the
rest of the series is below 1e-16 of its sum everywhere. The terms are split into blocks of
one CTE layer each, to keep every expression shallow; a row skips the blocks its ``z`` does
not need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from clv.sql_scoring.dialects import literal
from clv.sql_scoring.nodes import TINY, Layer

# AS241 coefficients, lowest degree first; the denominators' constant term is 1.
_CENTRAL_NUMERATOR = (3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3,
                      1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4,
                      3.3430575583588128105e4, 2.5090809287301226727e3)
_CENTRAL_DENOMINATOR = (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2,
                        5.3941960214247511077e3, 2.1213794301586595867e4,
                        3.9307895800092710610e4, 2.8729085735721942674e4,
                        5.2264952788528545610e3)
_TAIL_NUMERATOR = (1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
                   3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
                   2.27238449892691845833e-2, 7.74545014278341407640e-4)
_TAIL_DENOMINATOR = (1.0, 2.05319162663775882187e0, 1.67638483018380384940e0,
                     6.89767334985100004550e-1, 1.48103976427480074590e-1,
                     1.51986665636164571966e-2, 5.47593808499534494600e-4,
                     1.05075007164441684324e-9)
_FAR_NUMERATOR = (6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
                  2.96560571828504891230e-1, 2.65321895265761230930e-2,
                  1.24266094738807843860e-3, 2.71155556874348757815e-5,
                  2.01033439929228813265e-7)
_FAR_DENOMINATOR = (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1,
                    1.48753612908506148525e-2, 7.86869131145613259100e-4,
                    1.84631831751005468180e-5, 1.42151175831644588870e-7,
                    2.04426310338993978564e-15)
# Terms per CTE layer of the hypergeometric series (an expression nests two levels per term).
HYP2F1_BLOCK = 32


# Terms of a series may add up to at most this many times its sum (hyp2f1_terms): double
# precision then keeps about 11 of its 16 digits, far inside the 1e-8 the layers promise.
CANCELLATION = 1e5


class OutsideSqlRange(ValueError):
    """The inputs need more than the SQL evaluates (for example a BG/NBD fit whose
    hypergeometric series would need thousands of terms): score with onnxruntime instead."""


def _horner(coefficients: Sequence[float], x: str) -> str:
    """The polynomial with ``coefficients`` (lowest degree first) at column ``x``."""
    text = literal(coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        text = f"({text}) * {x} + {literal(coefficient)}"
    return text


def _ratio(numerator: Sequence[float], denominator: Sequence[float], x: str) -> str:
    return f"({_horner(numerator, x)}) / ({_horner(denominator, x)})"


def ndtri_layers(levels: dict[str, str]) -> list[Layer]:
    """Three layers computing ``Phi^-1(level)`` for each ``{output column: level column}``
    (levels in (0, 1); helper columns are named after the output)."""
    first: Layer = []
    second: Layer = []
    third: Layer = []
    for name, level in levels.items():
        q, r = f"{name}_centred", f"{name}_tail"
        first += [(q, f"{level} - 5.0e-1"),
                  (r, f"sqrt(-ln(greatest(least({level}, 1.0e0 - {level}), {literal(TINY)})))")]
        central, tail, far = f"{name}_central", f"{name}_near", f"{name}_far"
        second += [(central, f"1.80625e-1 - {q} * {q}"), (tail, f"{r} - 1.6e0"),
                   (far, f"{r} - 5.0e0")]
        sign = f"(case when {q} < 0.0e0 then -1.0e0 else 1.0e0 end)"
        third.append((name, (
            f"case when abs({q}) <= 4.25e-1\n"
            f"            then {q} * {_ratio(_CENTRAL_NUMERATOR, _CENTRAL_DENOMINATOR, central)}\n"
            f"            when {r} <= 5.0e0\n"
            f"            then {sign} * {_ratio(_TAIL_NUMERATOR, _TAIL_DENOMINATOR, tail)}\n"
            f"            else {sign} * {_ratio(_FAR_NUMERATOR, _FAR_DENOMINATOR, far)} end")))
    return [first, second, third]


def _series_ratio(a: float, b: float, k: int) -> float:
    """(a + k)(b + k) / (k + 1): the constant part of term k + 1 over term k."""
    return (a + k) * (b + k) / (k + 1)


def hyp2f1_terms(a: float, b: float, c_min: float, z_max: float, tolerance: float = 1e-16,
                 limit: int = 4000) -> int:
    """How many series terms make the rest of ``2F1(a, b; c; z)`` smaller than ``tolerance``
    times its sum, for every ``c >= c_min > 0`` and ``0 <= z <= z_max < 1`` (each term shrinks
    as ``c`` grows and ``z`` falls, so the corner ``(c_min, z_max)`` is the worst case).

    Refused (OutsideSqlRange) where terms of alternating sign cancel: summed in double
    precision, terms :data:`CANCELLATION` times larger than the sum leave it accurate to
    about 1e-11 only, and much larger ones (a BG/NBD fit with r far above b, a long horizon)
    leave nothing of it."""
    if not (c_min > 0 and 0 <= z_max < 1):
        raise OutsideSqlRange(f"the series needs c > 0 and 0 <= z < 1, got c >= {c_min}, "
                         f"z <= {z_max}")
    term, total, magnitude = 1.0, 1.0, 1.0
    for k in range(limit):
        term *= _series_ratio(a, b, k) / (c_min + k) * z_max
        total += term
        magnitude += abs(term)
        if not math.isfinite(magnitude):
            break
        if term == 0.0:
            return _checked(k + 1, a, b, c_min, z_max, total, magnitude)
        if abs(term) * z_max > tolerance * abs(total) * (1 - z_max):
            continue
        # Beyond term k + 1 every ratio is at most z_max * max(1, f(j)), f -> 1 as j grows.
        worst = max([1.0] + [abs(_series_ratio(a, b, j) / (c_min + j))
                             for j in range(k + 1, 2 * k + 64)]) * z_max
        if worst < 1 and abs(term) * worst / (1 - worst) <= tolerance * abs(total):
            return _checked(k + 1, a, b, c_min, z_max, total, magnitude)
    raise OutsideSqlRange(f"2F1({a}, {b}; c >= {c_min}; z <= {z_max}) needs more than {limit} "
                     "series terms: the BG/NBD fit is outside what SQL scoring evaluates")


def _checked(terms: int, a: float, b: float, c_min: float, z_max: float, total: float,
             magnitude: float) -> int:
    """``terms``, unless the series' terms (their absolute sum ``magnitude``) dwarf its sum."""
    if magnitude > CANCELLATION * abs(total):
        raise OutsideSqlRange(
            f"2F1({a}, {b}; c >= {c_min}; z <= {z_max}) sums terms whose absolute values add up "
            f"to {magnitude:.3g} into {total:.3g}: in double precision the series cancels (the "
            "BG/NBD fit is outside what SQL scoring evaluates)")
    return terms


def _z_needing_at_most(a: float, b: float, c_min: float, z_max: float, terms: int) -> float:
    """The largest ``z <= z_max`` (to 1e-12) for which ``terms`` terms are enough."""
    low, high = 0.0, z_max
    for _ in range(40):
        middle = (low + high) / 2
        if hyp2f1_terms(a, b, c_min, middle) <= terms:
            low = middle
        else:
            high = middle
    return low


def hyp2f1_layers(a: float, b: float, c: str, z: str, c_min: float, z_max: float,
                  name: str) -> list[Layer]:
    """Layers computing ``2F1(a, b; c; z)`` as column ``name`` from columns ``c >= c_min``
    and ``0 <= z <= z_max``.

    The blocks of terms are summed from the last one out; a row whose ``z`` needs none of a
    block's terms (see :func:`hyp2f1_terms`) takes 1 for it without computing it, so a
    customer with a long history (small ``z``) costs a few dozen terms, not hundreds.
    """
    terms = hyp2f1_terms(a, b, c_min, z_max)
    blocks = list(range(0, terms, HYP2F1_BLOCK))
    layers: list[Layer] = []
    inner = "1.0e0"
    for number, start in enumerate(reversed(blocks)):
        stop = min(start + HYP2F1_BLOCK, terms)
        text = inner
        for k in reversed(range(start, stop)):
            shift = f" + {literal(float(k))}" if k else ""
            text = f"1.0e0 + {literal(_series_ratio(a, b, k))} * {z} / ({c}{shift}) * ({text})"
        if start:
            skip = _z_needing_at_most(a, b, c_min, z_max, start)
            text = f"case when {z} <= {literal(skip)} then 1.0e0 else {text} end"
        column = name if number == len(blocks) - 1 else f"{name}_from_{start}"
        layers.append([(column, text)])
        inner = column
    return layers
