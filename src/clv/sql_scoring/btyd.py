"""BG/NBD + Gamma-Gamma predictions in SQL, from a saved fit: the network's BTYD inputs and
the total the spend level starts from.

The formulas are those of :func:`clv.baselines.btyd_expected_spend` with the fit's parameters
as literals, written in the same order of operations:

- probability alive: ``expit(-(ln a - ln(b + x - 1) + (r + x)(ln(alpha + T) - ln(alpha + t_x))))``
  for repeat buyers, 1 otherwise;
- expected purchases: Fader, Hardie & Lee (2005, eq. 10) with the Euler transformation of
  :func:`clv.btyd.bgnbd_expected_purchases`, the hypergeometric function as the series of
  :mod:`clv.sql_scoring.special`; for ``a`` within 1e-4 of 1 the same interpolation between
  ``a = 1 -+ 1e-4``;
- expected order value: Gamma-Gamma's ``p (v + x m) / (p x + q - 1)``, and where that does
  not exist (only possible when ``q <= 1``) the mean spend of the repeat buyers.

Not in SQL: Python's Gauss-Jacobi fallback for rows where the closed form is unusable. For a
fit with ``a + b > 1`` (refused otherwise) that only happens on inputs Python itself rejects
(negative or fractional frequencies, recency beyond T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from clv.hybrid import BTYDFit
from clv.sql_scoring.dialects import literal
from clv.sql_scoring.nodes import EXP_BOUND, TINY, Layer
from clv.sql_scoring.special import OutsideSqlRange, hyp2f1_layers

# As clv.btyd: closer than this to a = 1, the closed form is 0/0 and is interpolated.
A_NEAR_ONE = 1e-4


@dataclass(frozen=True)
class BTYDColumns:
    """Columns holding the BTYD summary: non-negative, finite doubles, recency <= age."""

    frequency: str
    recency: str
    age: str
    monetary: str


def _clamped_exp(expression: str) -> str:
    return f"exp(least(greatest({expression}, {literal(-EXP_BOUND)}), {literal(EXP_BOUND)}))"


def _ln(expression: str) -> str:
    return f"ln(greatest({expression}, {literal(TINY)}))"


def _given_alive(a: float, fit: BTYDFit, horizon: float, columns: BTYDColumns,
                 tag: str) -> tuple[list[Layer], str]:
    """Layers computing the expected purchases of a customer alive at T for parameter ``a``;
    the last layer's column holds it."""
    bgnbd = fit.bgnbd
    x, age = columns.frequency, columns.age
    c, z, log_1mz = f"btyd_c{tag}", f"btyd_z{tag}", f"btyd_log_1mz{tag}"
    first: Layer = [
        (c, f"{literal(a + bgnbd.b)} + {x} - 1.0e0"),
        (z, (f"{literal(horizon)} / greatest({literal(bgnbd.alpha)} + {age} + "
             f"{literal(horizon)}, {literal(TINY)})")),
        (log_1mz, (f"{_ln(f'{literal(bgnbd.alpha)} + {age}')} - "
                   f"{_ln(f'{literal(bgnbd.alpha)} + {age} + {literal(horizon)}')}")),
    ]
    # Frequencies >= 0 and ages >= 0: c >= a + b - 1 and z <= horizon / (alpha + horizon).
    series = hyp2f1_layers(a + bgnbd.b - 1.0 - bgnbd.r, a - 1.0, c, z, a + bgnbd.b - 1.0,
                           horizon / (bgnbd.alpha + horizon), f"btyd_hyp2f1{tag}")
    hyp = series[-1][0][0]
    given = f"btyd_given_alive{tag}"
    growth = _clamped_exp(f"{literal(a - 1.0)} * {log_1mz}")
    last: Layer = [(given, f"{c} * (1.0e0 - {growth} * {hyp}) / {literal(a - 1.0)}")]
    return [first, *series, last], given


def btyd_layers(fit: BTYDFit, horizon_days: float, columns: BTYDColumns,
                repeat_buyers_mean: str | None) -> list[Layer]:
    """Layers adding ``btyd_expected_purchases``, ``btyd_probability_alive``,
    ``btyd_expected_order_value`` and ``btyd_expected_spend`` over ``columns``.

    ``repeat_buyers_mean`` is the SQL of the repeat buyers' mean monetary value (the fit's
    ``repeat_order_value`` as a literal, or a window over the scored rows), needed only when the
    Gamma-Gamma fit has ``q <= 1``.
    """
    bgnbd, gamma = fit.bgnbd, fit.gamma_gamma
    if not bgnbd.a + bgnbd.b > 1.0:
        raise OutsideSqlRange(f"the BG/NBD fit has a + b = {bgnbd.a + bgnbd.b} <= 1, where Python "
                         "falls back to quadrature for one-time buyers; SQL scoring needs the "
                         "closed form")
    x, recency, age, money = columns.frequency, columns.recency, columns.age, columns.monetary
    horizon = float(horizon_days)
    log_odds = (f"{literal(math.log(bgnbd.a))} - {_ln(f'{literal(bgnbd.b)} + {x} - 1.0e0')} + "
                f"({literal(bgnbd.r)} + {x}) * ({_ln(f'{literal(bgnbd.alpha)} + {age}')} - "
                f"{_ln(f'{literal(bgnbd.alpha)} + {recency}')})")
    alive = (f"case when {x} > 0.0e0 then 1.0e0 / (1.0e0 + {_clamped_exp(log_odds)}) "
             "else 1.0e0 end")
    repeat_money = f"case when {x} > 0.0e0 then greatest({money}, 0.0e0) else 0.0e0 end"
    denominator = f"{literal(gamma.p)} * {x} + {literal(gamma.q)} - 1.0e0"
    missing = repeat_buyers_mean if gamma.q <= 1.0 and repeat_buyers_mean else "0.0e0"
    order_value = (f"greatest(case when {denominator} > 0.0e0 then {literal(gamma.p)} * "
                   f"({literal(gamma.v)} + {x} * ({repeat_money})) / ({denominator}) "
                   f"else {missing} end, 0.0e0)")
    first: Layer = [("btyd_probability_alive", alive),
                    ("btyd_expected_order_value", order_value)]
    if horizon <= 0:
        return [first, [("btyd_expected_purchases", "0.0e0")],
                [("btyd_expected_spend",
                  "btyd_expected_purchases * btyd_expected_order_value")]]
    if abs(bgnbd.a - 1.0) < A_NEAR_ONE:
        low, low_column = _given_alive(1.0 - A_NEAR_ONE, fit, horizon, columns, "_low")
        high, high_column = _given_alive(1.0 + A_NEAR_ONE, fit, horizon, columns, "_high")
        chains = [low, high]
        share = (bgnbd.a - (1.0 - A_NEAR_ONE)) / (2.0 * A_NEAR_ONE)
        given = f"{low_column} + {literal(share)} * ({high_column} - {low_column})"
    else:
        chain, given = _given_alive(bgnbd.a, fit, horizon, columns, "")
        chains = [chain]
    depth = max(len(chain) for chain in chains)
    layers: list[Layer] = [[] for _ in range(depth)]
    for chain in chains:  # side by side, ending together
        for index, layer in enumerate(chain, start=depth - len(chain)):
            layers[index].extend(layer)
    layers[0] = first + layers[0]
    layers.append([("btyd_expected_purchases",
                    f"btyd_probability_alive * greatest({given}, 0.0e0)")])
    layers.append([("btyd_expected_spend", "btyd_expected_purchases * btyd_expected_order_value")])
    return layers
