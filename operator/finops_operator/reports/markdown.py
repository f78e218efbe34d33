"""A short Markdown summary (at most ~40 lines) for chat and pull requests: the headline, what to do next."""
from __future__ import annotations

from ..money import usd
from .model import Report

MAX_LINES = 40


def _md(text: str) -> str:
    """Names from clusters are input: keep them from forming Markdown (links, emphasis, tables, HTML)."""
    out = str(text).replace("\n", " ")
    for ch in "\\`*_[]<>|#!":
        out = out.replace(ch, "\\" + ch)
    return out


def render_markdown(report: Report) -> str:
    h = report.headline
    lines = [f"## {_md(report.title)}", "", f"_{_md(report.source)}_"]
    lines += [f"> {_md(n)}" for n in report.notes[:2]]
    if h.get("opportunities"):
        g, p, c = h["gap"], h["period"], h["cumulative"]
        lines += ["", f"- **Estimated** {usd(h['estimatedMonthly'])}/month, **realized** {usd(h['realizedMonthly'])}"
                      f"/month (this period: {usd(h['estimatedDetectedInPeriod'])} found, "
                      f"{usd(h['realizedInPeriod'])} realized)",
                  f"- Gap {usd(g['gap'])}: {usd(g['notMerged'])} not merged, {usd(g['mergedNotVerified'])} merged "
                  f"not verified, {usd(g['verifiedBelowEstimate'])} verified below estimate",
                  "- This period: " + ", ".join(f"{v} {k}" for k, v in p.items()),
                  "- Cumulative: " + ", ".join(f"{v} {k}" for k, v in c.items())]
    for section_id, limit in (("lead-time", 1), ("recommendations", 5), ("budgets", 3), ("health", 0)):
        s = report.section(section_id)
        if s is None:
            continue
        if section_id == "health":
            worst = s.data["scores"][:3]
            lines += ["", "**Health** (worst first): " + ", ".join(
                f"{_md(x['subject'])} {x['score']:g} ({x['grade']})" for x in worst)]
            continue
        lines += ["", f"**{_md(s.title)}**"] + [f"- {_md(line)}" for line in s.lines[:limit]]
    s = report.section("insights")
    if s is not None:
        lines += ["", "**Top insights**"] + [f"- [{i['priority']}] {_md(i['title'])}" for i in s.data["insights"][:3]]
    return "\n".join(lines[:MAX_LINES]) + "\n"
