"""Chart primitives for the HTML report, drawn as inline SVG text.

Three charts (:func:`line_chart`, :func:`bar_chart`, :func:`histogram`) and what they are made
of: number formats, "nice" axis ticks and linear and log scales; and each chart's numbers as an
HTML table (:func:`lines_table`, :func:`bars_table`, :func:`histogram_table`), which a screen
reader and a keyboard reach where the marks' tooltips are not. A chart is a string of SVG
markup with a fixed ``viewBox`` that scales to the width of its container; it holds no script
and refers to nothing outside itself, so a page of them opens without a network.

Input is forgiving: NaN and infinite values are left out (a line breaks where they are, a bar
is not drawn), negative values extend below (or left of) zero, and a chart with no finite value
says "No data" instead of drawing axes around nothing. Every drawn data element carries
``class="mark"``, so a test can count what a browser drew.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from itertools import pairwise

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")
# Dash patterns (SVG stroke-dasharray; "" is solid) that tell lines apart without their colour:
# in greyscale, in print, and for readers who do not see the colours apart.
DASHES = ("", "9 4", "2 3", "12 3 2 3", "5 5", "1 6")
INK = "#222222"  # text
MUTED = "#666666"  # axis titles and notes
GRID = "#e3e3e3"
AXIS = "#888888"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
TICK_SIZE = 13  # px, tick labels and legend
LABEL_SIZE = 14  # px, axis titles
CHAR_WIDTH = 0.58  # average glyph width of the font, in ems (for laying out labels)
LABEL_SHARE = 0.4  # of a chart's width, at most, for the category names of horizontal bars

Formatter = Callable[[float], str]


# -- numbers ----------------------------------------------------------------------------------


def finite(value: object) -> bool:
    """True for a real number that is neither NaN nor infinite (None and text are not)."""
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def decimals_for(step: float) -> int:
    """Decimals that show every multiple of ``step`` exactly (0 for steps of 1 and more)."""
    if not finite(step) or step <= 0:
        return 0
    for decimals in range(7):
        if abs(round(step, decimals) - step) <= step * 1e-9:
            return decimals
    return 6


def format_number(value: float, decimals: int | None = None) -> str:
    """``value`` with thousands separators, e.g. 12,345 or 0.25; an en dash when not finite; a
    minus sign (U+2212, which screen readers read as "minus"), not a hyphen, before a negative
    number, and none before one that rounds to 0.

    Without ``decimals`` the precision follows the magnitude: none from 100 on, one from 10,
    two below (money is read to the unit, small amounts to the cent).
    """
    if not finite(value):
        return "\u2013"
    value = float(value)
    if decimals is None:
        size = abs(value)
        decimals = 0 if size >= 100 or size == 0 else 1 if size >= 10 else 2
    text = f"{value:,.{decimals}f}"
    if not text.startswith("-"):
        return text
    return text[1:] if not any(c in "123456789" for c in text) else "\u2212" + text[1:]


def tick_format(ticks: Sequence[float]) -> Formatter:
    """A format for ``ticks`` (evenly spaced): the decimals their step needs, no more."""
    step = min((b - a for a, b in pairwise(ticks) if b > a), default=1.0)
    decimals = decimals_for(step)

    def fmt(value: float) -> str:
        return format_number(value, decimals)

    return fmt


def format_percent(share: float, decimals: int = 0) -> str:
    """A share (0.25) as a percentage ("25%")."""
    return f"{format_number(share * 100, decimals)}%" if finite(share) else "\u2013"


def _overstated(share: object, decimals: int) -> bool:
    """Whether ``share`` as a percentage with ``decimals`` reads 100 short of certain, or 0
    above none."""
    if not finite(share):
        return False
    shown = round(float(share) * 100, decimals)
    return shown >= 100 > float(share) * 100 or shown <= 0 < float(share)


def format_probability(share: object, decimals: int) -> str:
    """A probability as a percentage with ``decimals``, but never 100% short of certain, nor 0%
    above none: ">99.9%", "<0.1%" at the last decimal."""
    if not _overstated(share, decimals):
        return format_percent(share, decimals)
    bound = 10.0 ** -decimals
    return (f"<{bound:.{decimals}f}%" if float(share) < 0.5
            else f">{100 - bound:.{decimals}f}%")


def format_probability_pair(before: object, after: object) -> tuple[str, str]:
    """Two shares as percentages with the fewest decimals (up to two) that tell them apart: a
    probability that crossed a segment's bound (0.5008 to 0.4978) reads 50.1% to 49.8%, not 50%
    to 50%; and that do not round a probability short of certain to 100% (0.9966: 99.7%), or
    one above none to 0% (at two decimals, ">99.99%" and "<0.01%")."""
    for decimals in (0, 1, 2):
        if decimals < 2 and (_overstated(before, decimals) or _overstated(after, decimals)):
            continue
        pair = format_probability(before, decimals), format_probability(after, decimals)
        if pair[0] != pair[1] or before == after:
            return pair
    return pair


# -- ticks and scales -------------------------------------------------------------------------


def nice_step(span: float, count: int = 5) -> float:
    """A step of 1, 2, 2.5 or 5 times a power of ten that cuts ``span`` into about ``count``
    intervals (at most ``count``)."""
    raw = span / max(count, 1)
    if not finite(raw) or raw <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if multiple * magnitude >= raw * (1 - 1e-9):
            return multiple * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def nice_ticks(low: float, high: float, count: int = 5,
               integer: bool = False) -> list[float]:
    """Ticks at multiples of a nice step from at or below ``low`` to at or above ``high``;
    whole numbers only when ``integer`` (counts).

    A single value gets a range around it; reversed bounds are swapped; non-finite bounds give
    the ticks of [0, 1].
    """
    if not (finite(low) and finite(high)):
        low, high = 0.0, 1.0
    low, high = (float(low), float(high)) if low <= high else (float(high), float(low))
    if high == low:
        pad = 1.0 if low == 0 else abs(low) * 0.5
        # from 0: a single positive value, and 0 itself (a total or a count that is 0)
        low, high = (0.0, high) if low > 0 else (low, 0.0) if low < 0 else (0.0, pad)
    step = nice_step(high - low, count)
    if integer:
        step = 1.0 if step < 1 else 5.0 if step == 2.5 else step
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    digits = decimals_for(step) + 2
    return [round(index * step, digits) + 0.0 for index in range(first, last + 1)]


@dataclass(frozen=True)
class LinearScale:
    """Maps the interval ``domain`` linearly onto the pixel interval ``span`` (which may run
    backwards, as a y axis does). A domain of zero width maps everything to the middle."""

    domain: tuple[float, float]
    span: tuple[float, float]

    def __call__(self, value: float) -> float:
        (d0, d1), (r0, r1) = self.domain, self.span
        if d1 == d0:
            return (r0 + r1) / 2
        return r0 + (float(value) - d0) / (d1 - d0) * (r1 - r0)


@dataclass(frozen=True)
class LogScale:
    """Maps the positive interval ``domain`` onto ``span`` by the logarithm: equal ratios take
    equal lengths. Values at or below zero have no position (ValueError)."""

    domain: tuple[float, float]
    span: tuple[float, float]

    def __post_init__(self) -> None:
        if not (self.domain[0] > 0 and self.domain[1] > 0):
            raise ValueError(f"a log scale needs a positive domain, got {self.domain}")

    def __call__(self, value: float) -> float:
        if not value > 0:
            raise ValueError(f"{value} has no position on a log scale")
        logs = (math.log10(self.domain[0]), math.log10(self.domain[1]))
        return LinearScale(logs, self.span)(math.log10(value))


def _whole(values: Sequence[float]) -> bool:
    return all(float(v).is_integer() for v in values if finite(v))


def _domain(values: Sequence[float], ticks: int, include_zero: bool) -> list[float]:
    """Ticks for ``values`` (counts get whole-number ticks); with ``include_zero`` (bars)
    zero is in the range, and values that are all zero get [0, 1]."""
    values = [float(v) for v in values if finite(v)]
    integer = _whole(values)
    if include_zero:
        values.append(0.0)
    if not values or (include_zero and min(values) == max(values) == 0):
        return nice_ticks(0.0, 1.0, ticks, integer)
    return nice_ticks(min(values), max(values), ticks, integer)


# -- SVG building blocks ----------------------------------------------------------------------


def text_width(text: str, size: float = TICK_SIZE) -> float:
    """Estimated width in px of ``text`` at font size ``size`` (for laying labels out)."""
    return len(text) * size * CHAR_WIDTH


def _shortened(text: str, room: float, size: float = TICK_SIZE) -> str:
    """``text``, cut with an ellipsis to fit ``room`` px at font size ``size``."""
    if text_width(text, size) <= room:
        return text
    keep = max(int(room / (size * CHAR_WIDTH)) - 1, 1)
    return text[:keep].rstrip() + "\u2026"


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, text: str, *, size: float = TICK_SIZE, anchor: str = "middle",
          fill: str = INK, rotate: bool = False) -> str:
    attributes = (f'x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}" '
                  f'dominant-baseline="middle" fill="{fill}"')
    if rotate:
        attributes += f' transform="rotate(-90 {_num(x)} {_num(y)})"'
    return f"<text {attributes}>{escape(text)}</text>"


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1,
          extra: str = "") -> str:
    return (f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" '
            f'stroke="{stroke}" stroke-width="{width}"{extra}/>')


def _svg(width: int, height: int, title: str, body: Sequence[str]) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{escape(title)}" font-family="{escape(FONT)}" '
            f'style="max-width:100%;height:auto">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _no_data(width: int, height: int, title: str, message: str = "No data") -> str:
    frame = (f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" '
             f'stroke="{GRID}"/>')
    return _svg(width, height, title, [
        frame, _text(width / 2, height / 2, message, size=LABEL_SIZE, fill=MUTED)])


def _dash(pattern: str) -> str:
    return f' stroke-dasharray="{escape(pattern)}"' if pattern else ""


@dataclass(frozen=True)
class _Legend:
    markup: str
    height: float


def _legend(entries: Sequence[tuple[str, str, str]], left: float, top: float,
            width: float) -> _Legend:
    """Swatches and names in rows that wrap at ``width``; entries are (name, colour, dash
    pattern)."""
    if len(entries) < 2:
        return _Legend("", 0.0)
    parts, x, y, row_height = [], left, top + 8, 20
    for name, color, dash in entries:
        item = 32 + text_width(name) + 18
        if x > left and x + item > left + width:
            x, y = left, y + row_height
        parts.append(_line(x, y, x + 26, y, color, 3, _dash(dash)))
        parts.append(_text(x + 32, y, name, anchor="start"))
        x += item
    return _Legend("".join(parts), y - top + row_height - 4)


@dataclass(frozen=True)
class _Frame:
    """The plot area inside a chart of ``width`` x ``height``."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


def _y_axis(frame: _Frame, scale: LinearScale, ticks: Sequence[float], fmt: Formatter,
            label: str) -> list[str]:
    parts = []
    for tick in ticks:
        y = scale(tick)
        parts.append(_line(frame.left, y, frame.right, y, AXIS if tick == 0 else GRID))
        parts.append(_text(frame.left - 6, y, fmt(tick), anchor="end"))
    widest = max((text_width(fmt(t)) for t in ticks), default=0)
    parts.append(_text(frame.left - widest - 22, (frame.top + frame.bottom) / 2, label,
                       size=LABEL_SIZE, fill=MUTED, rotate=True))
    return parts


def _x_tick_labels(frame: _Frame, x_scale: Callable[[float], float], values: Sequence[float],
                   label_format: Formatter, tick: float, color: str,
                   label_offset: float) -> list[str]:
    """Tick marks under the x axis at ``values`` with their labels; a label that would overlap
    the previous one is left out."""
    parts: list[str] = []
    free_from = -math.inf  # x where the last label drawn ends
    for value in values:
        x, text = x_scale(value), label_format(value)
        parts.append(_line(x, frame.bottom, x, frame.bottom + tick, color))
        if x - text_width(text) / 2 >= free_from:
            parts.append(_text(x, frame.bottom + label_offset, text))
            free_from = x + text_width(text) / 2 + 10
    return parts


def _x_title(frame: _Frame, label: str) -> str:
    return _text((frame.left + frame.right) / 2, frame.bottom + 40, label, size=LABEL_SIZE,
                 fill=MUTED)


def _left_margin(labels: Sequence[str]) -> float:
    return max((text_width(t) for t in labels), default=0) + 40


# -- charts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One series of a line chart: (x, y) points in x order; NaN breaks the line."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str = PALETTE[0]
    dash: str = ""  # a stroke-dasharray (DASHES); "" draws it solid
    markers: bool = False  # a dot at every point (for short series)


def line_chart(lines: Sequence[Line], *, title: str, x_label: str, y_label: str,
               x_format: Formatter | None = None, y_format: Formatter | None = None,
               x_domain: tuple[float, float] | None = None,
               y_domain: tuple[float, float] | None = None,
               x_ticks: Sequence[float] | None = None, width: int = 600,
               height: int = 400) -> str:
    """Lines on linear axes, with a legend when there is more than one; the first line is
    drawn on top."""
    xs = [float(x) for line in lines for x, y in line.points if finite(x) and finite(y)]
    ys = [float(y) for line in lines for x, y in line.points if finite(x) and finite(y)]
    if not xs:
        return _no_data(width, height, title)
    y_ticks = (nice_ticks(*y_domain, integer=_whole(ys)) if y_domain
               else _domain(ys, 5, include_zero=False))
    y_format = y_format or tick_format(y_ticks)
    if x_ticks is None:
        x_ticks = nice_ticks(*x_domain) if x_domain else _domain(xs, 6, include_zero=False)
    x_format = x_format or tick_format(x_ticks)
    x_lo = min(x_domain[0] if x_domain else min(xs), *x_ticks)
    x_hi = max(x_domain[1] if x_domain else max(xs), *x_ticks)
    if x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    legend = _legend([(line.name, line.color, line.dash) for line in lines], 16, 4,
                     width - 32)
    frame = _Frame(_left_margin([y_format(t) for t in y_ticks]), 14 + legend.height,
                   width - 24 - text_width(x_format(x_hi)) / 2, height - 56)
    x_scale = LinearScale((x_lo, x_hi), (frame.left, frame.right))
    y_scale = LinearScale((y_ticks[0], y_ticks[-1]), (frame.bottom, frame.top))
    parts = [legend.markup, *_y_axis(frame, y_scale, y_ticks, y_format, y_label)]
    parts.extend(_x_tick_labels(frame, x_scale, x_ticks, x_format, 5, AXIS, 16))
    parts.append(_line(frame.left, frame.bottom, frame.right, frame.bottom, AXIS))
    parts.append(_x_title(frame, x_label))
    for line in reversed(lines):  # the first line (the legend's first) is drawn on top
        parts.extend(_draw_line(line, x_scale, y_scale))
    return _svg(width, height, title, parts)


def _draw_line(line: Line, x_scale: LinearScale, y_scale: LinearScale) -> list[str]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in line.points:
        if finite(x) and finite(y):
            runs[-1].append((x_scale(x), y_scale(y)))
        elif runs[-1]:
            runs.append([])
    dash = _dash(line.dash)
    parts = []
    name = escape(line.name)
    for run in runs:
        if len(run) >= 2:
            path = " ".join(f"{'M' if i == 0 else 'L'}{_num(x)},{_num(y)}"
                            for i, (x, y) in enumerate(run))
            parts.append(f'<path class="mark" d="{path}" fill="none" stroke="{line.color}" '
                         f'stroke-width="2.5" stroke-linejoin="round"{dash}>'
                         f"<title>{name}</title></path>")
        if line.markers or len(run) == 1:
            parts.extend(f'<circle class="mark" cx="{_num(x)}" cy="{_num(y)}" r="3.5" '
                         f'fill="{line.color}"><title>{name}</title></circle>'
                         for x, y in run)
    return parts


@dataclass(frozen=True)
class Bars:
    """One series of a bar chart: a value per category (NaN: no bar), optionally an error to
    draw as a whisker on either side."""

    name: str
    values: Sequence[float]
    color: str = PALETTE[0]
    errors: Sequence[float] | None = None


def bar_chart(categories: Sequence[str], series: Sequence[Bars], *, title: str,
              value_label: str, category_label: str = "", horizontal: bool = False,
              value_format: Formatter | None = None, show_values: bool = False,
              width: int = 600, height: int | None = None) -> str:
    """Bars per category, series side by side; the value axis always includes zero, so
    negative values extend the other way. ``horizontal`` puts the categories down the left
    (long names, ranked lists) and sizes the chart to them."""
    for bars in series:
        if len(bars.values) != len(categories):
            raise ValueError(f"series {bars.name!r} has {len(bars.values)} values for "
                             f"{len(categories)} categories")
    values = [float(v) for bars in series for v in bars.values if finite(v)]
    spans = [float(v) + s * float(e) for bars in series if bars.errors is not None
             for v, e in zip(bars.values, bars.errors, strict=True) if finite(v) and finite(e)
             for s in (-1, 1)]
    if horizontal and height is None:
        height = int(max(160, 70 + len(categories) * (12 + 16 * len(series))
                         + (24 if len(series) > 1 else 0)))
    height = height or 400
    if not values:
        return _no_data(width, height, title)
    ticks = _domain(values + spans, 5, include_zero=True)
    fmt = value_format or tick_format(ticks)
    legend = _legend([(bars.name, bars.color, "") for bars in series], 16, 4, width - 32)
    if horizontal:
        return _horizontal_bars(categories, series, ticks, fmt, legend, title=title,
                                value_label=value_label, category_label=category_label,
                                show_values=show_values, width=width, height=height)
    frame = _Frame(_left_margin([fmt(t) for t in ticks]), 14 + legend.height, width - 16,
                   height - 56)
    scale = LinearScale((ticks[0], ticks[-1]), (frame.bottom, frame.top))
    parts = [legend.markup, *_y_axis(frame, scale, ticks, fmt, value_label)]
    band = frame.width / max(len(categories), 1)
    bar = band * 0.8 / max(len(series), 1)
    zero = scale(0)
    for index, category in enumerate(categories):
        start = frame.left + index * band + band * 0.1
        parts.append(_text(frame.left + (index + 0.5) * band, frame.bottom + 16, category))
        for number, bars in enumerate(series):
            value = bars.values[index]
            if not finite(value):
                continue
            x, y = start + number * bar, scale(float(value))
            parts.append(_rect(x + 0.5, min(y, zero), bar - 1, abs(zero - y), bars.color,
                               f"{bars.name}, {category}: {fmt(float(value))}"))
            if show_values:
                parts.append(_text(x + bar / 2, min(y, zero) - 8 if value >= 0 else
                                   max(y, zero) + 10, fmt(float(value)), size=12))
            parts.extend(_whisker(bars, index, scale, x + bar / 2, vertical=True))
    parts.append(_x_title(frame, category_label))
    return _svg(width, height, title, parts)


def _rect(x: float, y: float, w: float, h: float, color: str, tip: str) -> str:
    return (f'<rect class="mark" x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0))}" '
            f'height="{_num(max(h, 0))}" fill="{color}"><title>{escape(tip)}</title></rect>')


def _whisker(bars: Bars, index: int, scale: LinearScale, at: float,
             vertical: bool) -> list[str]:
    if bars.errors is None:
        return []
    value, error = bars.values[index], bars.errors[index]
    if not (finite(value) and finite(error)) or error <= 0:
        return []
    low, high = scale(float(value) - float(error)), scale(float(value) + float(error))
    if vertical:
        return [_line(at, low, at, high, INK, 1.5), _line(at - 4, low, at + 4, low, INK, 1.5),
                _line(at - 4, high, at + 4, high, INK, 1.5)]
    return [_line(low, at, high, at, INK, 1.5), _line(low, at - 4, low, at + 4, INK, 1.5),
            _line(high, at - 4, high, at + 4, INK, 1.5)]


def _horizontal_bars(categories: Sequence[str], series: Sequence[Bars], ticks: list[float],
                     fmt: Formatter, legend: _Legend, *, title: str, value_label: str,
                     category_label: str, show_values: bool, width: int,
                     height: int) -> str:
    value_room = max((text_width(fmt(float(v)), 12) for bars in series for v in bars.values
                      if finite(v)), default=0) + 10 if show_values else 0
    room = width * LABEL_SHARE  # a long name is shortened; its bars' tooltips hold it whole
    labels = [_shortened(category, room) for category in categories]
    frame = _Frame(max(text_width(label) for label in labels) + 22, 14 + legend.height,
                   width - 20 - value_room, height - 56)
    scale = LinearScale((ticks[0], ticks[-1]), (frame.left, frame.right))
    parts = [legend.markup]
    for tick in ticks:
        x = scale(tick)
        parts.append(_line(x, frame.top, x, frame.bottom, AXIS if tick == 0 else GRID))
        parts.append(_text(x, frame.bottom + 16, fmt(tick)))
    band = frame.height / max(len(categories), 1)
    bar = band * 0.8 / max(len(series), 1)
    zero = scale(0)
    for index, (category, label) in enumerate(zip(categories, labels, strict=True)):
        start = frame.top + index * band + band * 0.1
        parts.append(_text(frame.left - 8, frame.top + (index + 0.5) * band, label,
                           anchor="end"))
        for number, bars in enumerate(series):
            value = bars.values[index]
            if not finite(value):
                continue
            y, x = start + number * bar, scale(float(value))
            parts.append(_rect(min(x, zero), y + 0.5, abs(x - zero), bar - 1, bars.color,
                               f"{bars.name}, {category}: {fmt(float(value))}"))
            if show_values:
                right = value >= 0
                parts.append(_text(max(x, zero) + 6 if right else min(x, zero) - 6,
                                   y + bar / 2, fmt(float(value)), size=12,
                                   anchor="start" if right else "end"))
            parts.extend(_whisker(bars, index, scale, y + bar / 2, vertical=False))
    parts.append(_x_title(frame, value_label))
    if category_label:
        parts.append(_text(16, (frame.top + frame.bottom) / 2, category_label,
                           size=LABEL_SIZE, fill=MUTED, rotate=True))
    return _svg(width, height, title, parts)


def histogram(edges: Sequence[float], counts: Sequence[float], *, title: str, x_label: str,
              y_label: str, log_x: bool = False, color: str = PALETTE[0], width: int = 600,
              height: int = 400) -> str:
    """Bars between consecutive ``edges`` (increasing) with heights ``counts``, on a log x
    axis when ``log_x`` (every edge must then be positive). The axis is labelled at round
    values (powers of ten on a log axis); each bar's tooltip gives its edges."""
    edges = [float(e) for e in edges]
    if len(counts) != len(edges) - 1 and not (len(edges) == 0 and len(counts) == 0):
        raise ValueError(f"{len(edges)} edges need {max(len(edges) - 1, 0)} counts, "
                         f"got {len(counts)}")
    if any(not finite(e) for e in edges) or any(b <= a for a, b in pairwise(edges)):
        raise ValueError("histogram edges must be finite and increasing")
    if log_x and edges and edges[0] <= 0:
        raise ValueError("a log axis needs positive edges")
    heights = [float(c) if finite(c) else math.nan for c in counts]
    if not any(finite(c) for c in heights):
        return _no_data(width, height, title)
    ticks = _domain([c for c in heights if finite(c)], 5, include_zero=True)
    y_format = tick_format(ticks)
    frame = _Frame(_left_margin([y_format(t) for t in ticks]), 14, width - 24, height - 56)
    kind = LogScale if log_x else LinearScale
    x_scale = kind((edges[0], edges[-1]), (frame.left, frame.right))
    y_scale = LinearScale((ticks[0], ticks[-1]), (frame.bottom, frame.top))
    parts = _y_axis(frame, y_scale, ticks, y_format, y_label)
    zero = y_scale(0)
    for low, high, count in zip(edges[:-1], edges[1:], heights, strict=True):
        if not finite(count):
            continue
        x0, x1, y = x_scale(low), x_scale(high), y_scale(count)
        parts.append(_rect(x0 + 0.5, min(y, zero), x1 - x0 - 1, abs(zero - y), color,
                           f"{format_significant(low)} to {format_significant(high)}: "
                           f"{format_number(count, decimals_for(count))}"))
    if log_x:
        labels = log_ticks(edges[0], edges[-1])
        label_format: Formatter = format_exact
    else:
        labels = [t for t in nice_ticks(edges[0], edges[-1], 6)
                  if edges[0] - 1e-9 <= t <= edges[-1] + 1e-9]
        label_format = tick_format(labels)
    if len(labels) < 2:
        labels, label_format = edges, format_significant
    for edge in edges:
        x = x_scale(edge)
        parts.append(_line(x, frame.bottom, x, frame.bottom + 4, AXIS))
    parts.extend(_x_tick_labels(frame, x_scale, labels, label_format, 7, INK, 18))
    parts.append(_line(frame.left, frame.bottom, frame.right, frame.bottom, AXIS))
    parts.append(_x_title(frame, x_label))
    return _svg(width, height, title, parts)


def format_exact(value: float) -> str:
    """A round value with the decimals it has and no more: 0.5, 2, 1,000; below a millionth
    (beyond :func:`decimals_for`'s six decimals) to three significant digits."""
    if finite(value) and 0 < abs(value) < 1e-6:
        return format_significant(value)
    return format_number(value, decimals_for(abs(value)))


def format_significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits (at least to the unit), with thousands
    separators: 0.0215, 2.15, 215, 2,154."""
    if not finite(value) or value == 0:
        return format_number(value, 0)
    return format_number(value, max(0, digits - 1 - math.floor(math.log10(abs(value)))))


def _near(value: float, low: float, high: float) -> bool:
    return low * (1 - 1e-9) <= value <= high * (1 + 1e-9)


def log_ticks(low: float, high: float) -> list[float]:
    """Round values to label a log axis over [``low``, ``high``] (positive): the powers of ten
    in it, and 2 and 5 times them when fewer than three powers fall inside."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    powers = [float(f"1e{k}") for k in range(first, last + 1)]
    ticks = [value for value in powers if _near(value, low, high)]
    if len(ticks) < 3:
        ticks = [float(f"{m}e{k}") for k in range(first, last + 1) for m in (1, 2, 5)
                 if _near(float(f"{m}e{k}"), low, high)]
    return ticks


def log_edges(low: float, high: float, per_decade: int = 3,
              max_decades: int = 6) -> list[float]:
    """Bin edges of equal width on a log axis, ``per_decade`` of them per power of ten and on
    every power of ten (10, 21.5, 46.4, 100, ...), from at or below ``low`` to above ``high``.

    ``low`` and ``high`` must be positive; the edges span at most ``max_decades`` decades
    below ``high`` (values under the first edge then need a bin of their own).
    """
    if not (finite(low) and finite(high) and 0 < low <= high):
        raise ValueError(f"log bins need 0 < low <= high, got {low}, {high}")
    low = max(low, high / 10 ** max_decades)

    def edge(step: int) -> float:
        decade, part = divmod(step, per_decade)
        # a power of ten exactly (parsed, not computed), else 10 ** (step / per_decade)
        return float(f"1e{decade}") if part == 0 else 10 ** (step / per_decade)

    step = math.floor(math.log10(low) * per_decade)
    while edge(step) > low:  # float rounding of the logarithm
        step -= 1
    edges = [edge(step)]
    while edges[-1] <= high:
        step += 1
        edges.append(edge(step))
    return edges


# -- the numbers behind a chart ---------------------------------------------------------------


def table_head(*columns: str | tuple[str]) -> str:
    """A table's header row of column headers (HTML, escaped by the caller); a name in a
    1-tuple is text, aligned left."""
    cells = "".join(f'<th scope="col" class="text">{column[0]}</th>' if isinstance(column, tuple)
                    else f'<th scope="col">{column}</th>' for column in columns)
    return f"<thead><tr>{cells}</tr></thead>"


def _table(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table of a chart's numbers: column headers, each row headed by its first cell."""
    body = "".join(f'<tr><th scope="row">{escape(row[0])}</th>'
                   + "".join(f"<td>{escape(cell)}</td>" for cell in row[1:]) + "</tr>"
                   for row in rows)
    return (f'<table class="figures"><caption>{escape(caption)}</caption>'
            f"{table_head(*(escape(name) for name in head))}<tbody>{body}</tbody></table>")


def lines_table(lines: Sequence[Line], *, x_label: str, y_label: str,
                x_format: Formatter | None = None, y_format: Formatter = format_number) -> str:
    """A line chart's points as a table: a row per x value, a column per line (empty where a
    line has no point)."""
    xs = sorted({float(x) for line in lines for x, y in line.points if finite(x)})
    x_format = x_format or (lambda value: format_number(value, decimals_for(abs(value))))
    values = [{float(x): y for x, y in line.points if finite(x)} for line in lines]
    rows = [[x_format(x), *(y_format(v[x]) if x in v and finite(v[x]) else "" for v in values)]
            for x in xs]
    return _table(y_label, [x_label, *(line.name for line in lines)], rows)


def bars_table(categories: Sequence[str], series: Sequence[Bars], *, category_label: str,
               value_label: str, value_format: Formatter = format_number) -> str:
    """A bar chart's values as a table: a row per category, a column per series (and one for
    its errors, where it has them)."""
    head = [category_label or "category"]
    for bars in series:
        head.append(bars.name)
        if bars.errors is not None:
            head.append(f"{bars.name}: standard deviation")
    rows = []
    for index, category in enumerate(categories):
        row = [str(category)]
        for bars in series:
            value = bars.values[index]
            row.append(value_format(value) if finite(value) else "")
            if bars.errors is not None:
                error = bars.errors[index]
                row.append(value_format(error) if finite(error) else "")
        rows.append(row)
    return _table(value_label, head, rows)


def histogram_table(edges: Sequence[float], counts: Sequence[float], *, x_label: str,
                    y_label: str) -> str:
    """A histogram's bins as a table: a row per bin (its edges), its count."""
    rows = [[f"{format_significant(low)} to {format_significant(high)}",
             format_number(count, decimals_for(count)) if finite(count) else ""]
            for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True)]
    return _table(y_label, [x_label, y_label], rows)
