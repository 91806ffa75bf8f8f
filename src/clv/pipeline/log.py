"""Log lines that show in dbt's console and log (plain print outside dbt)."""

from __future__ import annotations


def dbt_log(message: str) -> None:
    try:
        from dbt.adapters.events.logging import AdapterLogger
    except ImportError:  # pragma: no cover - only outside a dbt install
        print(message)
        return
    AdapterLogger("clv").info(message)
