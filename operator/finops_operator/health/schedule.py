"""When each team's daily job runs: its local time (default 06:00) in its time zone, once per local day.

    plan = team_plans(settings, teams_seen)              # [TeamPlan(team, zone, time)], listed teams first
    day = due(plan, now, last_run=history.last_run.get(plan.team))   # the local day to run for, or None

A team runs once its local time has passed on its local day and it has not run on that day (the
stored ``lastRun``): an operator restarted after 06:00 runs the teams that did not run yet, and none
twice. Local time goes through :class:`zoneinfo.ZoneInfo`: on a spring-forward day a time inside the
gap (02:30 in Europe/Berlin) is read with the offset before the change, so the job runs an hour later
on the wall clock (03:30); on a fall-back day an ambiguous time is its first occurrence.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from .settings import HealthSettings


@dataclass(frozen=True, slots=True)
class TeamPlan:
    team: str
    zone: str                    # IANA name
    at: str                      # HH:MM local

    def run_at(self, day: date) -> datetime:
        """The UTC instant of ``at`` on the local ``day``."""
        hour, minute = (int(x) for x in self.at.split(":"))
        return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(self.zone)).astimezone(UTC)


def team_plans(settings: HealthSettings, teams_seen: list[str] | set[str] = ()) -> list[TeamPlan]:
    """The listed teams with their zone and time, then every other team seen at the defaults."""
    listed = [TeamPlan(t.name, t.time_zone or settings.time_zone, t.time or settings.time) for t in settings.teams]
    names = {p.team for p in listed}
    return listed + [TeamPlan(t, settings.time_zone, settings.time) for t in sorted(set(teams_seen) - names)]


def due(plan: TeamPlan, now: datetime, *, last_run: date | None) -> date | None:
    """The team's local day if its job should run now, else None."""
    day = now.astimezone(ZoneInfo(plan.zone)).date()
    if last_run is not None and last_run >= day:
        return None
    return day if now >= plan.run_at(day) else None
