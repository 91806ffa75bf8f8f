"""``clv``: the command line. ``clv build`` builds the whole project on any supported target
(:mod:`clv.build`); ``clv backfill`` and ``clv generate`` are the same as ``clv-backfill`` and
``clv-generate``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: clv <command> [options]

commands:
  build      build every model on a dbt target (DuckDB, PostgreSQL, Spark)
  backfill   score past as-of dates into clv_predictions_history
  generate   write a synthetic transactions data set

`clv <command> --help` shows a command's options."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "build":
        from clv.build import main as build

        return build(rest)
    if command == "backfill":
        from clv.pipeline.backfill import main as backfill

        return backfill(rest, prog="clv backfill")
    if command == "generate":
        from clv.synthetic.cli import main as generate

        return generate(rest, prog="clv generate")
    print(f"clv: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
