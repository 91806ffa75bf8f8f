"""dbt's parse of the project: what a scheduled daily job pays before any model runs.

    python bench/bench_parse.py --runs 5

`dbt parse` three ways, each ``--runs`` times, in a target directory of its own under bench/out
(the project's target/ is left alone), and prints each way's median and range:

- *reused*: the previous parse's vars again, so dbt reads `partial_parse.msgpack` and parses
  only what changed (nothing): the daily job whose `--vars` stay the same from day to day;
- *new vars*: other `--vars` than the previous run's, so dbt parses the whole project again:
  a job that passes the day's `clv_as_of_date`;
- *cold*: no saved parse at all (a fresh clone or a deleted target/).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics

from common import OUT_DIR, dbt_command, repeat

TARGET = OUT_DIR / "parse_target"


def _remove_saved_parse() -> None:
    shutil.rmtree(TARGET, ignore_errors=True)


def _parse(vars_: dict[str, str]) -> list[str]:
    return dbt_command("parse", "--target-path", str(TARGET), "--vars", json.dumps(vars_))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    day = {"clv_as_of_date": "2023-12-31"}
    days = iter({"clv_as_of_date": f"2023-12-{d:02d}"} for d in range(1, 31))

    cold = repeat(_parse(day), args.runs, before=_remove_saved_parse)
    repeat(_parse(day), 1)  # leaves the parse of ``day`` saved
    reused = repeat(_parse(day), args.runs)
    changed = [repeat(_parse(next(days)), 1)[0] for _ in range(args.runs)]

    print(f"dbt parse, {args.runs} runs each: median (min to max)")
    for name, results in (("reused (same vars)", reused), ("new vars", changed),
                          ("cold (no saved parse)", cold)):
        seconds = [r.seconds for r in results]
        print(f"  {name:<22} {statistics.median(seconds):5.2f} s "
              f"({min(seconds):.2f} to {max(seconds):.2f})")
    _remove_saved_parse()


if __name__ == "__main__":
    main()
