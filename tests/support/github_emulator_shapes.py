"""GitHub REST response shapes for the emulator (``pull-request``, ``pull-request-simple``,
``repository``, ``simple-user``, ``label``), trimmed to the documented fields PyGithub reads.

Timestamps are ISO 8601 UTC with a trailing ``Z`` as GitHub sends them.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

DOCS = "https://docs.github.com/rest"
HTML = "https://github.emulator.local"


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def user_json(api: str, login: str) -> dict[str, Any]:
    ident = 1 + sum(ord(c) for c in login)
    return {"login": login, "id": ident, "node_id": f"U_{ident}", "type": "User", "site_admin": False,
            "url": f"{api}/users/{login}", "html_url": f"{HTML}/{login}",
            "avatar_url": f"{HTML}/avatars/{login}"}


def repo_json(api: str, full_name: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    url = f"{api}/repos/{full_name}"
    return {"id": 4242, "node_id": "R_4242", "name": name, "full_name": full_name, "private": True,
            "owner": user_json(api, owner), "html_url": f"{HTML}/{full_name}", "url": url,
            "pulls_url": f"{url}/pulls{{/number}}", "issues_url": f"{url}/issues{{/number}}",
            "git_refs_url": f"{url}/git/refs{{/sha}}", "labels_url": f"{url}/labels{{/name}}",
            "clone_url": f"{api}/{full_name}.git", "default_branch": "main", "visibility": "private",
            "fork": False, "archived": False, "disabled": False,
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True}}


def label_json(api: str, full_name: str, name: str, ident: int) -> dict[str, Any]:
    return {"id": ident, "node_id": f"LA_{ident}", "url": f"{api}/repos/{full_name}/labels/{name}",
            "name": name, "color": "ededed", "default": False, "description": None}


def _part(api: str, full_name: str, ref: str, sha: str) -> dict[str, Any]:
    owner = full_name.split("/")[0]
    return {"label": f"{owner}:{ref}", "ref": ref, "sha": sha, "user": user_json(api, owner),
            "repo": repo_json(api, full_name)}


def pull_json(api: str, full_name: str, pr: Any, head_sha: str, base_sha: str, labels: list[dict],
              stats: dict[str, int] | None, *, full: bool) -> dict[str, Any]:
    """``pull-request`` (full=True, GET/POST/PATCH one PR) or ``pull-request-simple`` (list)."""
    url = f"{api}/repos/{full_name}/pulls/{pr.number}"
    issue = f"{api}/repos/{full_name}/issues/{pr.number}"
    html = f"{HTML}/{full_name}/pull/{pr.number}"
    out: dict[str, Any] = {
        "url": url, "id": 100000 + pr.number, "node_id": f"PR_{pr.number}", "html_url": html,
        "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue,
        "commits_url": f"{url}/commits", "review_comments_url": f"{url}/comments",
        "review_comment_url": f"{api}/repos/{full_name}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments", "statuses_url": f"{api}/repos/{full_name}/statuses/{head_sha}",
        "number": pr.number, "state": pr.state, "locked": False, "title": pr.title,
        "user": user_json(api, pr.user), "body": pr.body, "labels": labels, "milestone": None,
        "active_lock_reason": None, "created_at": ts(pr.created_at), "updated_at": ts(pr.updated_at),
        "closed_at": ts(pr.closed_at), "merged_at": ts(pr.merged_at), "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None, "assignees": [],
        "requested_reviewers": [user_json(api, r) for r in pr.requested_reviewers], "requested_teams": [],
        "head": _part(api, full_name, pr.head, head_sha), "base": _part(api, full_name, pr.base, base_sha),
        "_links": {"self": {"href": url}, "html": {"href": html}, "issue": {"href": issue}},
        "author_association": "MEMBER", "auto_merge": None, "draft": pr.draft,
    }
    if full:
        out.update({"merged": pr.merged_at is not None, "mergeable": None, "rebaseable": None,
                    "mergeable_state": "unknown",
                    "merged_by": user_json(api, pr.merged_by) if pr.merged_by else None,
                    "comments": 0, "review_comments": 0, "maintainer_can_modify": pr.maintainer_can_modify,
                    **(stats or {})})
    return out
