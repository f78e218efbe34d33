"""Weekly and monthly FinOps reports (pure): ReportData -> Report -> HTML | JSON | Markdown.

    report = build_report(ReportData(opportunities=ledger.opportunities, budgets=[...], ...),
                          period="weekly", end=now, persona="cfo")
    html = render_html(report)          # one self-contained file: inline CSS and SVG, no script, no URL
    doc = render_json(report)           # schema finops.report/v1 (reports/jsonout.py documents it)
    text = render_markdown(report)      # short, for chat and pull requests

Sections appear only when their data exists: the ledger's (headline, activity, breakdowns, top-open,
trends, lead-time, recommendations) need opportunities; spend needs a CostReport, budgets BudgetLines,
forecast a Forecast, anomalies Anomalies, health HealthScores, insights Insights.

``Report.headline`` keys: currency, estimatedMonthly, realizedMonthly (USD/month, every live opportunity /
every verified change), estimatedDetectedInPeriod, realizedInPeriod, gap {estimated, realized, gap,
notMerged, mergedNotVerified, verifiedBelowEstimate}, period and cumulative {detected, proposed, merged,
verified, rejected}, opportunities (count). Without opportunities the figures are zeros.
"""
from .build import build_report
from .data import BudgetLine, ReportData
from .html import render_html
from .jsonout import SCHEMA, render_json
from .markdown import render_markdown
from .model import Chart, Report, Section, Series, Table

__all__ = ["SCHEMA", "BudgetLine", "Chart", "Report", "ReportData", "Section", "Series", "Table", "build_report",
           "render_html", "render_json", "render_markdown"]
