"""Judge the renderings of a change set against what its findings intend (pure).

    judge(renders, intents, allow_shared=False) -> Judgement

For each finding (:class:`.proofdiff.Intent`) the *candidates* are the entry
points that render its workload with the finding's namespace (or, when none
does, those that render it without a namespace, e.g. a chart with no release
namespace). Its *primary* is the first candidate whose rendering has the
intended values after the edit and changed; a candidate that already had them
proves a no-op. Then every changed field of every entry point is one of:

* intended: the primary's field of the intended container, to the intended value;
* wrong: that field, to another value;
* shared: an intended field of the same kind/name/container in another entry
  point (another environment deploys it): "also changes", refused unless
  ``allow_shared``;
* added: an object a finding may add (a FreezeGrowth ResourceQuota) in its primary;
  elsewhere it is shared;
* unexpected: anything else (another container, another field, another object).

Wrong and unexpected changes always fail. The line of each entry point says
which; ``unproven`` names findings that no rendering shows as intended.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .entrypoints import EntryPoint
from .proofdiff import MISSING, FieldChange, Intent, ObjectChange, ObjectKey, accepts, field_ok, intended_path, \
    pod_spec_path

MAX_REASONS = 4


class RenderedLike(Protocol):
    entry: EntryPoint
    before_objects: dict[ObjectKey, dict]
    after_objects: dict[ObjectKey, dict]
    changes: list[ObjectChange]


@dataclass
class Outcome:
    line: str
    problems: list[str] = field(default_factory=list)
    owners: set[str] = field(default_factory=set)     # finding ids the problems are attributed to


@dataclass
class Judgement:
    entries: dict[tuple[str, str, str], Outcome] = field(default_factory=dict)
    unproven: dict[str, str] = field(default_factory=dict)     # finding id -> reason


@dataclass
class _Tally:
    intended: int = 0
    removed: int = 0
    added: int = 0
    problems: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    owners: set[str] = field(default_factory=set)
    shared_owners: set[str] = field(default_factory=set)


def _candidates(intent: Intent, renders: list[RenderedLike]) -> list[int]:
    strong, weak = [], []
    for index, rendered in enumerate(renders):
        strengths = {intent.match(k) for k in set(rendered.before_objects) | set(rendered.after_objects)}
        if "strong" in strengths:
            strong.append(index)
        elif "weak" in strengths:
            weak.append(index)
    found = strong or weak
    if intent.entry_point is None:
        return found
    return [i for i in found if _deploys(renders[i].entry, intent)]     # this cluster's entry point, no other


def _deploys(entry: EntryPoint, intent: Intent) -> bool:
    """Whether ``entry`` is the finding's DeploySource (a plain directory is proven file by file)."""
    here = intent.entry_point or "."
    if entry.kind == "manifest":
        return here == "." or entry.path.startswith(here.rstrip("/") + "/")
    if entry.path != here:
        return False
    return intent.release is None or entry.release is None or entry.release.name == intent.release


def _target_key(intent: Intent, rendered: RenderedLike) -> ObjectKey | None:
    keys = sorted(set(rendered.before_objects) | set(rendered.after_objects))
    return next((k for k in keys if intent.match(k) == "strong"), None) or \
        next((k for k in keys if intent.match(k) == "weak"), None)


def _misses(intent: Intent, rendered: RenderedLike) -> list[str]:
    """What in this rendering is not as the intent wants (empty: as intended)."""
    key = _target_key(intent, rendered)
    obj = rendered.after_objects.get(key) if key else None
    if intent.remove:
        return [] if obj is None else [f"{key} is still rendered"]
    if obj is None:
        return [f"{intent.kind}/{intent.name} is no longer rendered"]
    misses = []
    for name, wanted in intent.fields:
        ok, value = field_ok(obj, intent, name, wanted)
        if not ok:
            shown = "(unset)" if value is MISSING else value
            where = f" container {intent.container}" if intent.container else ""
            misses.append(f"{key}{where} {name} renders {shown}, "
                          f"intended {wanted if wanted is not None else '(removed)'}")
    return misses


def _primaries(renders: list[RenderedLike], intents: list[Intent], judgement: Judgement) -> dict[str, int]:
    primary: dict[str, int] = {}
    for intent in intents:
        candidates = _candidates(intent, renders)
        if not candidates:
            labels = ", ".join(r.entry.label for r in renders) or "none"
            here = f" in {intent.entry_point}, the entry point that deploys it here" if intent.entry_point else ""
            judgement.unproven[intent.finding_id] = (
                f"proof failed: no entry point that reads the edited files renders {intent.kind}/"
                f"{intent.namespace or '-'}/{intent.name}{here} (rendered: {labels})")
            continue
        good = [i for i in candidates if not _misses(intent, renders[i])]
        changed = [i for i in good if any(intent.match(c.key) for c in renders[i].changes)]
        if changed or good:
            primary[intent.finding_id] = (changed or good)[0]
        else:
            first = renders[candidates[0]]
            judgement.unproven[intent.finding_id] = (
                f"proof failed: rendered {first.entry.label}: " + "; ".join(_misses(intent, first)[:MAX_REASONS]))
    return primary


def _short(change: FieldChange, kind: str) -> str:
    prefix = pod_spec_path(kind)
    path = change.path[len(prefix):] if change.path[:len(prefix)] == prefix else change.path
    return str(FieldChange(path, change.before, change.after))


def _field_owner(change: FieldChange, obj: Any, loose: list[Intent]) -> tuple[Intent, str | None] | None:
    for intent in loose:
        for name, wanted in intent.fields:
            if obj is not None and intended_path(obj, intent, name) == change.path:
                return intent, wanted
    return None


def _tally_object(tally: _Tally, change: ObjectChange, rendered: RenderedLike, index: int,
                  intents: list[Intent], primary: dict[str, int]) -> None:
    loose = [i for i in intents if i.kind == change.key.kind and i.name == change.key.name]
    mine = [i for i in loose if primary.get(i.finding_id) == index and i.match(change.key)]
    if change.change == "removed" and any(i.remove for i in loose):
        if any(i.remove for i in mine):
            tally.removed += 1
        else:
            tally.shared.append(f"{change}")
            tally.shared_owners |= {i.finding_id for i in loose if i.remove}
        return
    if change.change == "added" and any(i.add for i in loose):
        if any(i.add for i in mine):
            tally.added += 1
        else:
            tally.shared.append(f"{change}")
            tally.shared_owners |= {i.finding_id for i in loose if i.add}
        return
    if change.change != "modified":
        tally.problems.append(f"{change}, which no finding intends")
        tally.owners |= {i.finding_id for i in loose}
        return
    obj = rendered.after_objects.get(change.key) or rendered.before_objects.get(change.key)
    for fc in change.fields:
        owner = _field_owner(fc, obj, loose)
        text = f"{change.key} {_short(fc, change.key.kind)}"
        if owner is None:
            tally.problems.append(f"{text} changed, which no finding intends")
            tally.owners |= {i.finding_id for i in loose}
        elif owner[0] in mine and accepts(owner[0], fc.path[-1], fc.after, owner[1]):
            tally.intended += 1
        elif owner[0] in mine:
            tally.problems.append(f"{text}, intended {owner[1]}")
            tally.owners.add(owner[0].finding_id)
        else:
            tally.shared.append(text)
            tally.shared_owners.add(owner[0].finding_id)


def _line(rendered: RenderedLike, tally: _Tally, allow_shared: bool) -> Outcome:
    label = rendered.entry.label
    problems = list(tally.problems)
    owners = set(tally.owners)
    if tally.shared and not allow_shared:
        problems += [f"also changes {s}, an environment this change set does not target (the edited file is "
                     "shared; edit this environment's own overlay or values file, or allow shared edits in the "
                     "policy)" for s in tally.shared]
        owners |= tally.shared_owners
    if problems:
        more = f" and {len(problems) - MAX_REASONS} more" if len(problems) > MAX_REASONS else ""
        return Outcome(f"rendered {label}: FAILED: " + "; ".join(problems[:MAX_REASONS]) + more, problems, owners)
    parts = []
    done = [f"{n} {noun}{'s' if n != 1 else ''} {verb}" for n, noun, verb in
            ((tally.intended, "field", "changed"), (tally.removed, "object", "removed"),
             (tally.added, "object", "added")) if n]
    if done:
        parts.append(" and ".join(done) + ", as intended")
    if tally.shared:
        parts.append("also changes " + "; ".join(tally.shared[:MAX_REASONS]) + " (shared edit, allowed by policy)")
    if not parts:
        parts.append("unchanged")
    return Outcome(f"rendered {label}: " + "; ".join(parts))


def judge(renders: list[RenderedLike], intents: list[Intent], *, allow_shared: bool = False) -> Judgement:
    """The outcome of every rendering and the findings no rendering proves."""
    judgement = Judgement()
    primary = _primaries(renders, intents, judgement)
    for index, rendered in enumerate(renders):
        tally = _Tally()
        for change in rendered.changes:
            _tally_object(tally, change, rendered, index, intents, primary)
        judgement.entries[rendered.entry.key] = _line(rendered, tally, allow_shared)
    return judgement
