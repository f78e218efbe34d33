"""Route handlers of the GitHub emulator (see ``github_emulator.py`` for the list and the rules).

Each handler is ``fn(emu, *path_groups, query=, body=, login=) -> (status, json, headers)`` and
raises :class:`ApiError` for what GitHub would reject. Called with the emulator lock held.
"""
from __future__ import annotations

import base64
import os
import re
import subprocess
from typing import Any
from urllib.parse import urlencode

from tests.support.fixtures_git import git
from tests.support.github_emulator import ApiError, GitHubEmulator, PullRequest, invalid, utcnow
from tests.support.github_emulator_shapes import repo_json, user_json

Result = tuple[int, Any, dict]
PULLS_DOCS = "https://docs.github.com/rest/pulls/pulls"


def _missing(resource: str, fld: str) -> ApiError:
    return ApiError(422, "Validation Failed", [{"resource": resource, "field": fld, "code": "missing_field"}])


def _bad_field(resource: str, fld: str) -> ApiError:
    return ApiError(422, "Validation Failed", [{"resource": resource, "field": fld, "code": "invalid"}])


def _pr(emu: GitHubEmulator, number: str) -> PullRequest:
    pr = emu.prs.get(int(number))
    if pr is None:
        raise ApiError(404, "Not Found", docs=PULLS_DOCS + "#get-a-pull-request")
    return emu._refresh(pr)


def _open_duplicate(emu: GitHubEmulator, head: str, base: str, skip: int | None = None) -> None:
    for other in emu.prs.values():
        emu._refresh(other)
        if other.number != skip and other.state == "open" and other.head == head and other.base == base:
            raise invalid(f"A pull request already exists for {emu.owner}:{head}.")


def _check_text(body: dict[str, Any], fld: str, limit: int) -> None:
    value = body.get(fld)
    if value is not None and not isinstance(value, str):
        raise ApiError(422, f"Invalid request.\n\nFor 'properties/{fld}', {value!r} is not a string.")
    if isinstance(value, str) and len(value) > limit:
        raise invalid(f"{fld} is too long (maximum is {limit} characters)")


def get_repo(emu: GitHubEmulator, *, query: dict, body: Any, login: str) -> Result:
    return 200, repo_json(emu.api_url, emu.full_name), {}


def list_pulls(emu: GitHubEmulator, *, query: dict, body: Any, login: str) -> Result:
    state = query.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise _bad_field("PullRequest", "state")
    prs = [emu._refresh(p) for p in emu.prs.values()]
    prs = [p for p in prs if state == "all" or p.state == state]
    head = query.get("head", "")
    if ":" in head:  # GitHub ignores a head filter that is not "user:ref-name"
        owner, _, ref = head.partition(":")
        prs = [p for p in prs if owner.lower() == emu.owner.lower() and p.head == ref]
    if "base" in query:
        prs = [p for p in prs if p.base == query["base"]]
    key = {"updated": lambda p: p.updated_at}.get(query.get("sort", "created"), lambda p: p.number)
    prs.sort(key=key, reverse=query.get("direction", "desc") == "desc")
    chunk, headers = pages(prs, query, f"{emu.api_url}/repos/{emu.full_name}/pulls")
    return 200, [emu.pull_json(p, full=False) for p in chunk], headers


def create_pull(emu: GitHubEmulator, *, query: dict, body: Any, login: str) -> Result:
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON")
    for fld in ("title", "head", "base"):
        if not body.get(fld):
            raise _missing("PullRequest", fld)
    _check_text(body, "title", 256)
    _check_text(body, "body", 65536)
    if "draft" in body and not isinstance(body["draft"], bool):
        raise ApiError(422, f"Invalid request.\n\nFor 'properties/draft', {body['draft']!r} is not a boolean.")
    owner, _, head = body["head"].rpartition(":")
    if (owner and owner.lower() != emu.owner.lower()) or emu.sha(head) is None:
        raise _bad_field("PullRequest", "head")
    base = body["base"]
    if emu.sha(base) is None:
        raise _bad_field("PullRequest", "base")
    if git("rev-list", "--count", f"refs/heads/{base}..refs/heads/{head}", cwd=emu.bare) == "0":
        raise invalid(f"No commits between {base} and {head}")
    _open_duplicate(emu, head, base)
    pr = PullRequest(emu.new_number(), body["title"], body.get("body"), head, base, login,
                     draft=bool(body.get("draft", False)),
                     maintainer_can_modify=bool(body.get("maintainer_can_modify", False)))
    emu.prs[pr.number] = pr
    return 201, emu.pull_json(pr, full=True), {"Location": f"{emu.api_url}/repos/{emu.full_name}/pulls/{pr.number}"}


def get_pull(emu: GitHubEmulator, number: str, *, query: dict, body: Any, login: str) -> Result:
    return 200, emu.pull_json(_pr(emu, number), full=True), {}


def edit_pull(emu: GitHubEmulator, number: str, *, query: dict, body: Any, login: str) -> Result:
    pr = _pr(emu, number)
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON")
    _check_text(body, "title", 256)
    _check_text(body, "body", 65536)
    state = body.get("state")
    if state is not None and state not in ("open", "closed"):
        raise _bad_field("PullRequest", "state")
    if state == "open" and pr.state == "closed":
        _reopen(emu, pr)
    elif state == "closed" and pr.state == "open":
        pr.frozen_head_sha, pr.state, pr.closed_at = emu.sha(pr.head), "closed", utcnow()
    if "base" in body:
        if emu.sha(body["base"]) is None:
            raise _bad_field("PullRequest", "base")
        pr.base = body["base"]
    pr.title = body.get("title", pr.title)
    pr.body = body.get("body", pr.body)
    pr.updated_at = utcnow()
    return 200, emu.pull_json(pr, full=True), {}


def _reopen(emu: GitHubEmulator, pr: PullRequest) -> None:
    if pr.merged_at:
        raise invalid("state cannot be changed. The pull request has already been merged.")
    current = emu.sha(pr.head)
    if current is None:
        raise invalid(f"state cannot be changed. The {pr.head} branch has been deleted.")
    if current != pr.frozen_head_sha:
        raise invalid(f"state cannot be changed. The {pr.head} branch has been force-pushed or recreated.")
    _open_duplicate(emu, pr.head, pr.base, skip=pr.number)
    pr.state, pr.closed_at, pr.frozen_head_sha = "open", None, None


def get_reviewers(emu: GitHubEmulator, number: str, *, query: dict, body: Any, login: str) -> Result:
    pr = _pr(emu, number)
    return 200, {"users": [user_json(emu.api_url, r) for r in pr.requested_reviewers], "teams": []}, {}


def request_reviewers(emu: GitHubEmulator, number: str, *, query: dict, body: Any, login: str) -> Result:
    pr = _pr(emu, number)
    if not isinstance(body, dict) or not isinstance(body.get("reviewers", []), list):
        raise ApiError(422, "Invalid request.\n\nFor 'properties/reviewers', it is not an array.")
    reviewers = body.get("reviewers", [])
    if not reviewers and not body.get("team_reviewers"):
        raise invalid("Invalid request. No reviewers or team_reviewers were given.")
    if pr.state != "open":
        raise invalid("Could not request reviewers: the pull request is closed.")
    if body.get("team_reviewers"):
        raise invalid("Reviews may only be requested from collaborators. One or more of the teams you specified "
                      f"is not a collaborator of the {emu.full_name} repository.")
    if pr.user in reviewers:
        raise invalid("Review cannot be requested from pull request author.")
    if any(r not in emu.collaborators for r in reviewers):
        raise invalid("Reviews may only be requested from collaborators. One or more of the users or teams you "
                      f"specified is not a collaborator of the {emu.full_name} repository.")
    pr.requested_reviewers += [r for r in reviewers if r not in pr.requested_reviewers]
    return 201, emu.pull_json(pr, full=True), {}


def get_reviews(emu: GitHubEmulator, number: str, *, query: dict, body: Any, login: str) -> Result:
    pr = _pr(emu, number)
    url = f"{emu.api_url}/repos/{emu.full_name}/pulls/{pr.number}"
    return 200, [{"id": 1000 * pr.number + i, "node_id": f"PRR_{pr.number}_{i}", "user": user_json(emu.api_url, who),
                  "body": "", "state": state, "commit_id": emu.sha(pr.head), "author_association": "COLLABORATOR",
                  "html_url": f"{url}#pullrequestreview-{i}", "pull_request_url": url,
                  "submitted_at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
                 for i, (who, state, at) in enumerate(pr.reviews, start=1)], {}


def get_labels(emu: GitHubEmulator, number: str, *, query: dict, body: Any, login: str) -> Result:
    pr = _pr(emu, number)
    return 200, [emu.label(n) for n in pr.labels], {}


def add_labels(emu: GitHubEmulator, number: str, *, query: dict, body: Any, login: str) -> Result:
    pr = _pr(emu, number)
    names = body.get("labels") if isinstance(body, dict) else body
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ApiError(422, "Invalid request.\n\nFor 'links/0/schema', nil is not an array of non-empty strings.")
    if any(len(n) > 50 for n in names):
        raise ApiError(422, "Validation Failed", [{"resource": "Label", "field": "name", "code": "invalid"}])
    pr.labels += [n for n in names if n not in pr.labels]
    return 200, [emu.label(n) for n in pr.labels], {}


def get_ref(emu: GitHubEmulator, branch: str, *, query: dict, body: Any, login: str) -> Result:
    sha = emu.sha(branch)
    if sha is None:
        raise ApiError(404, "Not Found", docs="https://docs.github.com/rest/git/refs#get-a-reference")
    url = f"{emu.api_url}/repos/{emu.full_name}"
    return 200, {"ref": f"refs/heads/{branch}", "node_id": f"REF_{sha[:8]}", "url": f"{url}/git/refs/heads/{branch}",
                 "object": {"sha": sha, "type": "commit", "url": f"{url}/git/commits/{sha}"}}, {}


def serve_git(emu: GitHubEmulator, method: str, url: Any, headers: Any, raw: bytes) -> tuple[int, dict, bytes]:
    """Smart HTTP through the real ``git http-backend``, with GitHub's token-as-password basic auth."""
    owner, repo, rest = url.path.lstrip("/").split("/", 2)
    if f"{owner}/{repo}".lower() != f"{emu.full_name}.git".lower():
        return 404, {"Content-Type": "text/plain"}, b"Repository not found.\n"
    tok = emu.tokens.get(basic_password(headers.get("Authorization")) or "")
    if tok is None:
        return 401, {"WWW-Authenticate": 'Basic realm="GitHub"', "Content-Type": "text/plain"}, b""
    if "git-receive-pack" in rest + url.query and not tok.write:
        return 403, {"Content-Type": "text/plain"}, b"Write access to repository not granted.\n"
    env = {**os.environ, "GIT_PROJECT_ROOT": str(emu.bare.parent), "GIT_HTTP_EXPORT_ALL": "1",
           "PATH_INFO": f"/{emu.bare.name}/{rest}", "QUERY_STRING": url.query, "REQUEST_METHOD": method,
           "CONTENT_TYPE": headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(raw)),
           "REMOTE_USER": tok.login, "REMOTE_ADDR": "127.0.0.1",
           "HTTP_CONTENT_ENCODING": headers.get("Content-Encoding", ""),
           "GIT_PROTOCOL": headers.get("Git-Protocol", "")}
    proc = subprocess.run(["git", "http-backend"], check=False, input=raw, env=env, capture_output=True, timeout=60)
    head, _, payload = proc.stdout.partition(b"\r\n\r\n")
    status, out_headers = 200, {}
    for line in head.decode(errors="replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        elif key:
            out_headers[key.strip()] = value.strip()
    return status, out_headers, payload


def basic_password(header: str | None) -> str | None:
    """The password of an HTTP Basic Authorization header, or None."""
    m = re.fullmatch(r"(?i)basic\s+(\S+)", (header or "").strip())
    if not m:
        return None
    try:
        return base64.b64decode(m.group(1)).decode().partition(":")[2]
    except ValueError:
        return None


def pages(items: list[Any], query: dict[str, str], base_url: str) -> tuple[list[Any], dict[str, str]]:
    """GitHub pagination: per_page (default 30, max 100), page; RFC 5988 Link header."""
    per_page = min(100, max(1, int(query.get("per_page", 30))))
    page = max(1, int(query.get("page", 1)))
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page: page * per_page]
    links = []
    def link(p: int, rel: str) -> str:
        return f'<{base_url}?{urlencode({**query, "page": p, "per_page": per_page})}>; rel="{rel}"'
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    return chunk, ({"Link": ", ".join(links)} if links else {})
