"""``build_report``: ReportData -> Report, the ledger's sections (the other sections in :mod:`.sections`)."""
from __future__ import annotations

from datetime import UTC, datetime

from ..ledger import Ledger, Opportunity
from ..money import usd
from . import ledgerstats as ls
from .data import ReportData
from .model import PERIODS, Chart, Report, Section, Series, Table
from .periods import bucket_label, buckets, period_start
from .sections import other_sections

BREAKDOWNS = ("team", "namespace", "type", "cluster")
STATE_ORDER = ("Detected", "NeedsApproval", "Blocked", "Proposed", "Merged", "Verified", "Rejected")


def build_report(data: ReportData, *, period: str, end: datetime, persona: str = "cfo") -> Report:
    """The report of the ``period`` (weekly | monthly) ending at ``end`` (exclusive), for ``persona``."""
    if period not in PERIODS:
        period_start(period, end)                      # raises the ConfigError naming the choices
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    start = period_start(period, end)
    opps = data.opportunities
    headline = _headline(opps, start, end)
    sections: list[Section | None] = []
    if opps:
        sections += [_headline_section(headline), _activity(opps, start, end), _breakdowns(opps),
                     _top_open(opps), _trends(opps, period, end), _lead_time(opps, start, end),
                     _recommendations(opps)]
    sections += other_sections(data, persona=persona, start=start, end=end)
    return Report(period, start, end, persona, data.source, headline, tuple(s for s in sections if s),
                  tuple(data.notes))


def _headline(opps: list[Opportunity], start: datetime, end: datetime) -> dict:
    g = ls.gap(opps)
    return {"currency": "USD", "estimatedMonthly": g.estimated, "realizedMonthly": g.realized,
            "estimatedDetectedInPeriod": ls.estimated_detected_between(opps, start, end),
            "realizedInPeriod": ls.realized_between(opps, start, end),
            "gap": g.as_dict(), "period": ls.count_events(opps, start, end),
            "cumulative": ls.count_events(opps, None, end), "opportunities": len(opps)}


def _headline_section(h: dict) -> Section:
    g = h["gap"]
    below = g["verifiedBelowEstimate"]
    lines = (f"Estimated savings {usd(h['estimatedMonthly'])}/month, realized {usd(h['realizedMonthly'])}/month "
             f"(gap {usd(g['gap'])}/month).",
             f"This period: {usd(h['estimatedDetectedInPeriod'])}/month newly found, "
             f"{usd(h['realizedInPeriod'])}/month newly realized.",
             f"The gap: {usd(g['notMerged'])} not merged yet, {usd(g['mergedNotVerified'])} merged but not verified, "
             + (f"{usd(below)} verified below estimate." if below >= 0 else f"verified {usd(-below)} above estimate."))
    chart = Chart("bar", "Estimated vs realized savings (USD/month)", ("estimated", "realized"),
                  (Series("USD/month", (h["estimatedMonthly"], h["realizedMonthly"])),))
    gap_chart = Chart("bar", "The gap explained (USD/month)", ("not merged", "merged, not verified",
                                                                "verified below estimate"),
                      (Series("USD/month", (g["notMerged"], g["mergedNotVerified"], max(0.0, below))),))
    return Section("headline", "Savings: estimated vs realized", lines, (chart, gap_chart), data=dict(h))


def _activity(opps: list[Opportunity], start: datetime, end: datetime) -> Section:
    period, total = ls.count_events(opps, start, end), ls.count_events(opps, None, end)
    table = Table(("", *ls.EVENTS), (("this period", *period.values()), ("cumulative", *total.values())))
    chart = Chart("bar", "Opportunities this period", ls.EVENTS, (Series("count", tuple(period.values())),),
                  unit="count")
    return Section("activity", "Opportunities detected, proposed, merged, verified, rejected", (), (chart,),
                   (("Counts", table),), {"period": period, "cumulative": total})


def _breakdowns(opps: list[Opportunity]) -> Section:
    ledger = Ledger(opps)
    tables, charts, data = [], [], {}
    for by in BREAKDOWNS:
        groups = ledger.totals(by=by)["groups"]
        data[by] = groups
        rows = tuple((key, g["opportunities"], g["estimated"], g["estimated_open"], g["realized"])
                     for key, g in sorted(groups.items(), key=lambda kv: (-kv[1]["estimated"], kv[0])))
        tables.append((f"By {by}", Table((by, "opportunities", "estimated", "still open", "realized"), rows,
                                         money=("estimated", "still open", "realized"))))
        keys = tuple(sorted(groups, key=lambda k: (-groups[k]["opportunities"], k)))[:12]
        charts.append(Chart("stacked", f"Ledger states by {by}", keys,
                            tuple(Series(state, tuple(float(groups[k]["counts"][state]) for k in keys))
                                  for state in STATE_ORDER if any(groups[k]["counts"][state] for k in keys)),
                            unit="count"))
    return Section("breakdowns", "Breakdowns by team, namespace, type and cluster", (), tuple(charts), tuple(tables),
                   data)


def _top_open(opps: list[Opportunity]) -> Section | None:
    top = ls.top_open(opps)
    if not top:
        return None
    rows = tuple((o.target, o.type, o.team or "", o.state.value, o.estimated_monthly_savings, o.pr_url or "")
                 for o in top)
    return Section("top-open", "Top opportunities still open", (),
                   tables=(("Largest first", Table(("target", "type", "team", "state", "estimated", "pull request"),
                                                   rows, money=("estimated",))),),
                   data={"opportunities": [{"id": o.id, "target": o.target, "type": o.type, "team": o.team,
                                            "state": o.state.value, "estimated": o.estimated_monthly_savings,
                                            "prUrl": o.pr_url} for o in top]})


def _trends(opps: list[Opportunity], period: str, end: datetime) -> Section:
    spans = buckets(period, end)
    labels = tuple(bucket_label(period, a, b) for a, b in spans)
    counts = [ls.count_events(opps, a, b) for a, b in spans]
    found = tuple(ls.estimated_detected_between(opps, a, b) for a, b in spans)
    realized = tuple(ls.realized_between(opps, a, b) for a, b in spans)
    word = "week" if period == "weekly" else "month"
    last, before = counts[-1], counts[-2]
    lines = tuple(f"{e}: {last[e]} this {word}, {last[e] - before[e]:+d} {word} over {word}"
                  for e in ("detected", "merged", "verified"))
    lines += (f"Realized this {word} {usd(realized[-1])}/month against {usd(realized[-2])}/month the {word} before.",)
    money = Chart("line", f"Savings found and realized per {word} (USD/month)", labels,
                  (Series("found (estimated)", found), Series("realized", realized)))
    events = Chart("line", f"Opportunities per {word}", labels,
                   tuple(Series(e, tuple(float(c[e]) for c in counts)) for e in ("detected", "merged", "verified")),
                   unit="count")
    return Section("trends", f"Trends {word} over {word}", lines, (money, events),
                   data={"labels": list(labels), "counts": counts, "found": list(found), "realized": list(realized)})


def _lead_time(opps: list[Opportunity], start: datetime, end: datetime) -> Section | None:
    total = ls.lead_times(opps, None, end)
    if not total:
        return None
    period = ls.lead_time_summary(ls.lead_times(opps, start, end))
    cumulative = ls.lead_time_summary(total)

    def say(name: str, s: dict) -> str:
        if not s["count"]:
            return f"{name}: nothing merged"
        return f"{name}: median {s['medianDays']} days, p90 {s['p90Days']} days over {s['count']} merged changes"
    return Section("lead-time", "Pull request lead time (detected to merged)",
                   (say("This period", period), say("Cumulative", cumulative)),
                   data={"period": period, "cumulative": cumulative})


def _recommendations(opps: list[Opportunity]) -> Section | None:
    waiting, rejected = ls.awaiting(opps), ls.repeated_rejections(opps)
    if not waiting and not rejected:
        return None
    lines = tuple(f"Approve next: {o.target} ({o.type}, {usd(o.estimated_monthly_savings)}/month, "
                  f"{'pull request open' if o.pr_url else 'awaiting approval'})" for o in waiting)
    lines += tuple(f"Keeps being rejected: {by} {key} ({n} rejections); revisit its settings or exclude it"
                   for by, key, n in rejected)
    return Section("recommendations", "Recommendations", lines, data={
        "approveNext": [{"id": o.id, "target": o.target, "type": o.type, "state": o.state.value,
                         "estimated": o.estimated_monthly_savings, "prUrl": o.pr_url} for o in waiting],
        "repeatedlyRejected": [{"by": by, "key": key, "rejections": n} for by, key, n in rejected]})
