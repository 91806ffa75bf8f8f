"""A report in headless Chromium: where each chart lands on the page, and a PNG of it.

For the tests (did every chart draw, did the page log any script error) and for the README's
picture of the report::

    python -m clv.report.screenshot reports/clv_report.html docs/report.png --colors 256

Chromium runs with a throw-away profile and every host name unresolvable, so a page that needed
the network would show it. The report itself holds no script; to measure the layout, a copy of
it with a short script that writes each chart's box into the DOM is opened with ``--dump-dom``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser")  # Debian's package, and its name elsewhere
WIDTH = 1280  # px: a laptop screen
TIMEOUT = 180  # s for one browser run (a cold start on a busy machine takes a while)
FLAGS = (
    "--headless",
    "--no-sandbox",  # the sandbox cannot start as root or in most containers; a local file only
    "--disable-gpu",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no host resolves: the page must need no network
    "--enable-logging=stderr",
    "--v=0",
)
# Measures the page: each chart's box (page coordinates) and the page's height, as attributes.
PROBE = """<script>
for (const figure of document.querySelectorAll('figure[data-chart]')) {
  const box = (figure.querySelector('svg') || figure).getBoundingClientRect();
  figure.setAttribute('data-box', [box.left + scrollX, box.top + scrollY, box.width,
                                   box.height].map(Math.round).join(','));
}
document.body.setAttribute('data-page-height', document.documentElement.scrollHeight);
document.body.setAttribute('data-page-width', document.documentElement.scrollWidth);
</script>"""
CONSOLE = re.compile(r":CONSOLE(?::\d+)?\]\s*(.*)")


def find_browser() -> str | None:
    """The Chromium executable on PATH, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@dataclass(frozen=True)
class Chart:
    """A chart as the browser laid it out: its box in page pixels and what its SVG holds."""

    key: str
    box: tuple[int, int, int, int]  # left, top, width, height
    marks: int  # drawn data elements (class "mark") inside it
    is_note: bool  # a note stands in place of the chart


@dataclass(frozen=True)
class Layout:
    page_height: int
    charts: list[Chart]
    page_width: int  # wider than the window: the page scrolls sideways
    console: list[str]  # messages the page logged (script errors among them)


class _Figures(HTMLParser):
    """Reads the dumped DOM: each figure's attributes and the marks inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.page_height = 0
        self.page_width = 0
        self.charts: list[dict] = []
        self._depth = 0  # figure nesting while inside one

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "body" and attributes.get("data-page-height"):
            self.page_height = int(attributes["data-page-height"] or 0)
            self.page_width = int(attributes.get("data-page-width") or 0)
        if tag == "figure" and "data-chart" in attributes:
            self.charts.append({"key": attributes["data-chart"], "box": attributes.get("data-box"),
                                "note": attributes.get("data-note") == "true", "marks": 0})
            self._depth = 1
        elif tag == "figure" and self._depth:
            self._depth += 1
        elif self._depth and "mark" in (attributes.get("class") or "").split():
            self.charts[-1]["marks"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure" and self._depth:
            self._depth -= 1


def run_browser(url: str, arguments: Sequence[str], width: int, height: int,
                browser: str | None = None) -> tuple[str, list[str]]:
    """Run headless Chromium on ``url``; return its standard output and the page's console
    messages. Raises RuntimeError when the browser is missing or fails."""
    browser = browser or find_browser()
    if browser is None:
        raise RuntimeError(f"no Chromium on PATH (looked for {', '.join(BROWSERS)})")
    with tempfile.TemporaryDirectory(prefix="clv_chromium_") as profile:
        command = [browser, *FLAGS, f"--user-data-dir={profile}",
                   f"--window-size={width},{height}", *arguments, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False, env={**os.environ, "HOME": profile})
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{Path(browser).name} exited with {done.returncode}:\n{tail}")
    console = [match.group(1) for line in done.stderr.splitlines()
               if (match := CONSOLE.search(line))]
    return done.stdout, console


def layout(report: Path, width: int = WIDTH, browser: str | None = None) -> Layout:
    """Where the report's charts land at ``width`` px, measured in a probed copy of it."""
    html = Path(report).read_text(encoding="utf-8")
    if "</body>" not in html:
        raise ValueError(f"{report} is not an HTML page with a body")
    with tempfile.TemporaryDirectory(prefix="clv_report_probe_") as folder:
        probed = Path(folder) / "probed.html"
        probed.write_text(html.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
        dom, console = run_browser(probed.as_uri(), ["--dump-dom"], width, 1000, browser)
    parser = _Figures()
    parser.feed(dom)
    charts = [Chart(key=c["key"], marks=c["marks"], is_note=c["note"],
                    box=tuple(int(v) for v in (c["box"] or "0,0,0,0").split(",")))
              for c in parser.charts]
    return Layout(parser.page_height, charts, parser.page_width, console)


def screenshot(report: Path, png: Path, width: int = WIDTH,
               browser: str | None = None) -> tuple[Layout, list[str]]:
    """A PNG of the whole report at ``width`` px (as tall as the page); returns the layout
    and the console messages of the screenshot run."""
    measured = layout(report, width, browser)
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    _, console = run_browser(Path(report).resolve().as_uri(), [f"--screenshot={png}"], width,
                             max(measured.page_height, 200), browser)
    if not png.is_file():
        raise RuntimeError(f"the browser wrote no screenshot to {png}")
    return measured, console


def reduce_colors(png: Path, colors: int) -> None:
    """Rewrite ``png`` with a palette of ``colors`` colours (no dithering): flat charts keep
    their look at a third of the size. Needs Pillow (the dev extra)."""
    from PIL import Image

    with Image.open(png) as image:
        reduced = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                                                dither=Image.Dither.NONE)
    reduced.save(png, optimize=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clv.report.screenshot",
        description="Screenshot an HTML report in headless Chromium (the whole page).")
    parser.add_argument("report", type=Path, help="the report, e.g. reports/clv_report.html")
    parser.add_argument("png", type=Path, help="where to write the PNG")
    parser.add_argument("--width", type=int, default=WIDTH, help=f"px (default {WIDTH})")
    parser.add_argument("--colors", type=int, default=0,
                        help="reduce the PNG to this many colours (needs Pillow); 0 keeps all")
    args = parser.parse_args(argv)
    try:
        measured, console = screenshot(args.report, args.png, args.width)
        if args.colors:
            reduce_colors(args.png, args.colors)
    except ImportError:
        print("screenshot: --colors needs Pillow: pip install -e '.[dev]'", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as error:
        print(f"screenshot: {error}", file=sys.stderr)
        return 1
    for message in measured.console + console:
        print(f"screenshot: the page logged: {message}", file=sys.stderr)
    drawn = sum(not chart.is_note for chart in measured.charts)
    print(f"{args.png}: {args.width} x {measured.page_height} px, {drawn} charts, "
          f"{len(measured.charts) - drawn} notes, {args.png.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
