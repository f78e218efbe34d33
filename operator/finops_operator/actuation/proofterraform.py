"""Prove a Terraform edit: ``tofu fmt`` finds nothing new to change, and python-hcl2 parses it.

A file that was already not ``tofu fmt``-clean before the edit (hand-aligned
attributes, odd spacing) stays acceptable as long as the edit adds no line that
``tofu fmt`` would change: each line ``tofu fmt`` would rewrite after the edit
must be the same line, or the edited counterpart of a line, that it would
already rewrite before. An inserted line that is not formatted (the classic
``desired_size = 1`` among ``=``-aligned attributes) is refused with its number.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import hcl2

from ..errors import ProofError
from .rendertools import RenderTools, trim


def unformatted_lines(text: str, formatted: str) -> set[int]:
    """0-based numbers of the lines of ``text`` that formatting rewrites (or removes)."""
    lines, wanted = text.splitlines(), formatted.splitlines()
    flagged: set[int] = set()
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, lines, wanted, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            flagged.update(range(i1, i2))
    return flagged


def edited_counterparts(before: str, after: str) -> dict[int, int]:
    """after line -> before line, for lines kept or replaced one for one by the edit."""
    old, new = before.splitlines(), after.splitlines()
    mapping: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            mapping.update({j1 + k: i1 + k for k in range(j2 - j1)})
    return mapping


def new_format_problems(before: str | None, before_formatted: str | None, after: str,
                        after_formatted: str) -> list[int]:
    """1-based numbers of lines the edit left in a shape ``tofu fmt`` would change (and that were not so)."""
    flagged_after = unformatted_lines(after, after_formatted)
    if before is None or before_formatted is None:
        return sorted(n + 1 for n in flagged_after)
    flagged_before = unformatted_lines(before, before_formatted)
    mapping = edited_counterparts(before, after)
    return sorted(n + 1 for n in flagged_after if mapping.get(n) not in flagged_before)


def check_terraform(tools: RenderTools, path: str, before: str | None, after: str | None, *, cwd: Path) -> str:
    """The proof line of one edited Terraform file; ProofError when it is not proven."""
    if after is None:
        return f"checked {path}: deleted"
    after_formatted = tools.tofu_fmt(after, cwd=cwd)
    before_formatted = None
    if before is not None:
        try:
            before_formatted = tools.tofu_fmt(before, cwd=cwd)
        except ProofError:
            before_formatted = None        # unparseable before: judge the edited file on its own
    problems = new_format_problems(before, before_formatted, after, after_formatted)
    if problems:
        lines = after.splitlines()
        shown = "; ".join(f"line {n}: {lines[n - 1].strip()!r}" for n in problems[:3] if n - 1 < len(lines))
        raise ProofError(f"`tofu fmt -check` fails on the edited text ({shown}); the edit must keep the file "
                         "formatted", source=path)
    try:
        hcl2.loads(after)
    except Exception as exc:        # python-hcl2 raises lark errors of several types
        raise ProofError(f"python-hcl2 cannot parse the edited text: {trim(str(exc), 300)}", source=path) from None
    if after == after_formatted:
        return f"checked {path}: tofu fmt -check passes, parses with python-hcl2"
    return (f"checked {path}: parses with python-hcl2; adds nothing tofu fmt would change "
            f"(the file was not tofu fmt-clean before the edit)")
