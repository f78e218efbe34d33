"""The daily score history of every subject, and each team's last daily run, as stored (pure).

    history = decode(blob)                         # ValueError saying what is wrong for anything not from encode
    history = record(history, "team:payments", day, 72.5)   # at most MAX_DAYS per subject, MAX_SUBJECTS subjects
    history = ran(history, "payments", day)        # the daily job ran for the team on its local day
    history = kept_insights(history, "payments", [StoredInsight(...)])   # the team's latest run's insights
    blob = encode(history)                         # gzip of {"version", "scores": {key: {"start", "values"}},
                                                   #          "lastRun": {team: day}, "insights": {team: [...]}}
"""
from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from ..safeio import gunzip_json

VERSION = 1
MAX_DAYS = 400                  # per subject: more than a year
MAX_SUBJECTS = 300              # teams + namespaces (a ConfigMap holds 1 MiB; 300 x 400 days is ~150 KiB gzipped)
MAX_BLOB = 900 * 1024           # compressed bytes accepted
MAX_JSON = 8 * 1024 * 1024      # decompressed bytes accepted (a gzip bomb stops here)
MAX_KEY = 140                   # "team:" + a label value, "namespace:" + a namespace name
MAX_INSIGHTS = 50               # per team: its latest run's insights (the delivery engine keeps its own queue)
MAX_TEXT = 300                  # characters of an insight's id or title kept
INSIGHT_FIELDS = ("id", "title", "priority", "category")


@dataclass(frozen=True, slots=True)
class StoredInsight:
    id: str
    title: str
    priority: str
    category: str
    day: date


@dataclass(frozen=True, slots=True)
class HealthHistory:
    scores: dict[str, dict[date, float]] = field(default_factory=dict)   # subject key -> day -> score
    last_run: dict[str, date] = field(default_factory=dict)             # team -> the local day its job last ran
    insights: dict[str, tuple[StoredInsight, ...]] = field(default_factory=dict)   # team -> its latest run's


def record(history: HealthHistory, key: str, day: date, score: float) -> HealthHistory:
    """``history`` with the subject's score for ``day`` (a later score of the same day wins), trimmed."""
    scores = {k: dict(v) for k, v in history.scores.items()}
    days = scores.setdefault(key[:MAX_KEY], {})
    days[day] = round(float(score), 1)
    first = day - timedelta(days=MAX_DAYS - 1)
    scores[key[:MAX_KEY]] = {d: v for d, v in sorted(days.items()) if first <= d <= day}
    return HealthHistory(_newest(scores), dict(history.last_run), dict(history.insights))


def ran(history: HealthHistory, team: str, day: date) -> HealthHistory:
    last = {**history.last_run, team[:MAX_KEY]: day}
    if len(last) > MAX_SUBJECTS:
        last = dict(sorted(last.items(), key=lambda kv: kv[1])[-MAX_SUBJECTS:])
    insights = {t: v for t, v in history.insights.items() if t in last}
    return HealthHistory(history.scores, last, insights)


def kept_insights(history: HealthHistory, team: str, insights: list[StoredInsight]) -> HealthHistory:
    """The team's latest insights (the highest priority first is the caller's order), at most MAX_INSIGHTS."""
    cut = tuple(StoredInsight(i.id[:MAX_TEXT], i.title[:MAX_TEXT], i.priority[:20], i.category[:40], i.day)
                for i in insights[:MAX_INSIGHTS])
    return HealthHistory(history.scores, dict(history.last_run), {**history.insights, team[:MAX_KEY]: cut})


def _newest(scores: dict[str, dict[date, float]]) -> dict[str, dict[date, float]]:
    """At most MAX_SUBJECTS subjects: the ones scored most recently stay."""
    if len(scores) <= MAX_SUBJECTS:
        return scores
    ranked = sorted(scores, key=lambda k: (max(scores[k]) if scores[k] else date.min, k))
    return {k: scores[k] for k in ranked[-MAX_SUBJECTS:]}


def encode(history: HealthHistory) -> bytes:
    doc = {"version": VERSION,
           "scores": {k: _series(v) for k, v in sorted(history.scores.items()) if v},
           "lastRun": {t: d.isoformat() for t, d in sorted(history.last_run.items())},
           "insights": {t: [{"id": i.id, "title": i.title, "priority": i.priority, "category": i.category,
                             "day": i.day.isoformat()} for i in v] for t, v in sorted(history.insights.items())}}
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0)


def _series(days: dict[date, float]) -> dict[str, object]:
    start, end = min(days), max(days)
    values = [days.get(start + timedelta(days=i)) for i in range((end - start).days + 1)]
    return {"start": start.isoformat(), "values": values}


def decode(blob: bytes) -> HealthHistory:
    doc = gunzip_json(blob, max_blob=MAX_BLOB, max_raw=MAX_JSON)
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise ValueError(f"not a version-{VERSION} health history")
    scores, last = doc.get("scores"), doc.get("lastRun")
    if not isinstance(scores, dict) or not isinstance(last, dict):
        raise ValueError("scores and lastRun must be mappings")
    if len(scores) > MAX_SUBJECTS or len(last) > MAX_SUBJECTS:
        raise ValueError(f"more than {MAX_SUBJECTS} subjects")
    insights = doc.get("insights", {})
    if not isinstance(insights, dict) or len(insights) > MAX_SUBJECTS:
        raise ValueError(f"insights must be a mapping of at most {MAX_SUBJECTS} teams")
    return HealthHistory({_key(k): _days(k, v) for k, v in scores.items()},
                         {_key(t): _day(d, f"lastRun[{t!r}]") for t, d in last.items()},
                         {_key(t): _insights(t, v) for t, v in insights.items()})


def _insights(team: str, items: object) -> tuple[StoredInsight, ...]:
    if not isinstance(items, list) or len(items) > MAX_INSIGHTS:
        raise ValueError(f"insights[{team!r}] must be a list of at most {MAX_INSIGHTS}")
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and len(item[k]) <= MAX_TEXT
                                                 for k in INSIGHT_FIELDS):
            raise ValueError(f"insights[{team!r}][{n}] must hold {', '.join(INSIGHT_FIELDS)} as short strings")
        out.append(StoredInsight(item["id"], item["title"], item["priority"], item["category"],
                                 _day(item.get("day"), f"insights[{team!r}][{n}].day")))
    return tuple(out)


def _key(key: object) -> str:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
        raise ValueError(f"a subject must be a string of 1 to {MAX_KEY} characters, got {str(key)[:40]!r}")
    return key


def _days(key: str, series: object) -> dict[date, float]:
    if not isinstance(series, dict) or not isinstance(series.get("values"), list):
        raise ValueError(f"scores[{key!r}] must be {{start, values}}")
    values = series["values"]
    if len(values) > MAX_DAYS:
        raise ValueError(f"scores[{key!r}] holds {len(values)} days, more than {MAX_DAYS}")
    start = _day(series.get("start"), f"scores[{key!r}].start")
    out = {}
    for i, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 100:
            raise ValueError(f"scores[{key!r}].values[{i}] must be a score 0-100 or null, got {v!r}")
        out[start + timedelta(days=i)] = float(v)
    return out


def _day(text: object, name: str) -> date:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"{name} must be a date YYYY-MM-DD, got {str(text)[:40]!r}") from None
