"""`finops forecast`: a daily spend forecast from a CSV, for people (table) and scripts (JSON).

    finops forecast --csv FILE --horizon DAYS [--method auto|holt-winters|...] [--output table|json]

JSON (stdout): ``{"method": ..., "backtestMape": ..., "forecast": [{"date": "YYYY-MM-DD", "value": ...,
"lower": ..., "upper": ...}, ...]}``, one entry per day after the last date of the CSV; money in USD rounded
to cents, ``backtestMape`` a fraction (0.05 = 5%) or null when no back-test was possible.
"""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..forecast import forecast
from ..models.spend import Forecast
from ..money import usd
from .common import print_json
from .spendcsv import read_spend_csv


def run_forecast(args: argparse.Namespace, console: Console) -> int:
    series = read_spend_csv(args.csv)
    result = forecast(series, args.horizon, args.method, source=str(args.csv))
    if args.output == "json":
        print_json(forecast_to_json(result))
    else:
        show_forecast(console, result, source=str(args.csv))
    return 0


def forecast_to_json(result: Forecast) -> dict[str, Any]:
    mape = None if result.backtest_mape is None else round(result.backtest_mape, 4)
    return {"method": result.method, "backtestMape": mape,
            "forecast": [{"date": p.day.isoformat(), "value": round(p.value, 2), "lower": round(p.lower, 2),
                          "upper": round(p.upper, 2)} for p in result.points]}


def show_forecast(console: Console, result: Forecast, *, source: str = "") -> None:
    table = Table(header_style="bold", title=f"Forecast of {escape(source)}" if source else None)
    table.add_column("Date")
    table.add_column("Forecast", justify="right")
    table.add_column("95% interval", justify="right")
    for p in result.points:
        table.add_row(f"{p.day:%Y-%m-%d %a}", usd(p.value), f"{usd(p.lower)} .. {usd(p.upper)}")
    console.print(table)
    mape = "no back-test" if result.backtest_mape is None else f"back-tested daily MAPE {result.backtest_mape:.1%}"
    console.print(f"Method [bold]{escape(result.method)}[/] ({mape}); total over {len(result.points)} days "
                  f"[bold]{usd(result.total)}[/]", soft_wrap=True)
