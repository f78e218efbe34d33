"""A small, strict GitHub REST emulator on 127.0.0.1, backed by a real bare git repository.

GitHub itself cannot be reached from the tests, so this server speaks exactly the
REST shapes PyGithub uses in ``actuation/github.py`` (from GitHub's REST docs:
pulls, issues/labels, requested_reviewers, repos, git refs, rate_limit) and
nothing else: any other route answers 404 and is recorded in ``unhandled``.

Endpoints (API root = ``api_url``; JSON in and out)::

    GET    /rate_limit
    GET    /repos/{owner}/{repo}
    GET    /repos/{owner}/{repo}/pulls                 ?state=open|closed|all &head=owner:ref &base= &sort= &direction=
                                                       &per_page= &page=   (Link header pagination)
    POST   /repos/{owner}/{repo}/pulls                 {title, head, base, body?, draft?, maintainer_can_modify?}
    GET    /repos/{owner}/{repo}/pulls/{n}
    PATCH  /repos/{owner}/{repo}/pulls/{n}             {title?, body?, state?: open|closed, base?}
    GET    /repos/{owner}/{repo}/pulls/{n}/requested_reviewers
    POST   /repos/{owner}/{repo}/pulls/{n}/requested_reviewers   {reviewers?, team_reviewers?}
    GET    /repos/{owner}/{repo}/pulls/{n}/reviews
    GET    /repos/{owner}/{repo}/issues/{n}/labels
    POST   /repos/{owner}/{repo}/issues/{n}/labels     ["a", ...] or {"labels": [...]}
    GET    /repos/{owner}/{repo}/git/ref/heads/{branch}
    git smart HTTP: {api_url}/{owner}/{repo}.git/...   (real ``git http-backend``; basic auth, password = token)

Real: branches, commits and shas (the bare repo's refs; PR ``head.sha`` is the live
branch tip), merges (``merge(n)`` makes a real merge commit on the base branch with
``git merge-tree``), pushes over HTTP. Emulated in memory: PR/issue metadata, labels,
users (the token owner plus ``collaborators``), review requests, submitted reviews
(``review(n, by)``: like GitHub, a submitted review removes its author from the requested reviewers).

Strictness (as GitHub): ``Authorization: token|Bearer <t>`` required (401 "Requires
authentication" / "Bad credentials"), a User-Agent required (403), read-only tokens get
403 "Resource not accessible by personal access token" with ``X-Accepted-GitHub-Permissions``
on writes, unknown repos 404, malformed JSON 400, 422 "Validation Failed" for a PR whose
head does not exist / already has an open PR / has no commits over base (head == base),
missing title, reviewers that are not collaborators or are the author, review requests on a
closed PR or with no reviewer at all, reopening a PR
whose branch was force-pushed or deleted while closed; deleting the head branch of an
open PR closes it. Every response carries ``X-RateLimit-*`` headers.

Failure injection: ``fail_next(n, status, after=False)`` (next n API requests answer
status; ``after=True`` performs the request first, like a gateway timing out after the
write), ``rate_limit_next(n, kind="secondary"|"primary", retry_after=1)``.
Not emulated: review comments, comments, checks, mergeability (``mergeable`` is null, "unknown").
"""
from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fixtures_git import git, merge_into
from tests.support.github_emulator_shapes import DOCS, label_json, pull_json


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict] | None = None, docs: str = DOCS,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors, self.docs = status, message, errors, docs
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "documentation_url": self.docs, "status": str(self.status)}
        if self.errors:
            out["errors"] = self.errors
        return out


def invalid(message: str) -> ApiError:
    return ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom", "message": message}])


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class PullRequest:
    number: int
    title: str
    body: str | None
    head: str
    base: str
    user: str
    draft: bool = False
    state: str = "open"
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    merged_by: str | None = None
    frozen_head_sha: str | None = None       # head sha when closed/merged
    labels: list[str] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)
    reviews: list[tuple[str, str, datetime]] = field(default_factory=list)   # (login, state, submitted_at)
    maintainer_can_modify: bool = False


@dataclass(frozen=True)
class _Fault:
    status: int
    after: bool                  # perform the request, then answer the error
    headers: dict[str, str]
    body: dict[str, Any]
    match: str                   # regex over "METHOD /path"

    def error(self) -> ApiError:
        return ApiError(self.status, self.body.get("message", "error"), docs=self.body.get("documentation_url", DOCS),
                        headers=self.headers)


@dataclass
class Token:
    login: str
    write: bool = True


class GitHubEmulator:
    """The server and its state. Start with ``start()``; see the module docstring."""

    def __init__(self, bare: Path, full_name: str = "acme/gitops", *, token: str = "ghp_" + "E" * 36,
                 login: str = "finops-bot", collaborators: tuple[str, ...] = ("alice", "bob")):
        self.bare = Path(bare)
        self.full_name = full_name
        self.owner = full_name.split("/")[0]
        self.token = token
        self.readonly_token = "ghp_" + "R" * 36
        self.tokens: dict[str, Token] = {token: Token(login), self.readonly_token: Token("reader", write=False)}
        self.collaborators = {login, *collaborators}
        self.prs: dict[int, PullRequest] = {}
        self.label_ids: dict[str, int] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.unhandled: list[str] = []
        self.rate_remaining = 5000
        self._faults: list[_Fault] = []
        self._next_number = 1
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> GitHubEmulator:
        handler = type("Handler", (_Handler,), {"emu": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="github-emulator",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def api_url(self) -> str:
        assert self._server, "emulator not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def git_url(self) -> str:
        """File path of the bare repo (git pushes to it directly)."""
        return str(self.bare)

    @property
    def git_http_url(self) -> str:
        """The same repository over smart HTTP, token-authenticated like github.com."""
        return f"{self.api_url}/{self.full_name}.git"

    # ------------------------------------------------------------------ test helpers

    def fail_next(self, n: int, status: int = 500, *, after: bool = False, match: str = ".*") -> None:
        """The next ``n`` API requests matching ``match`` ("METHOD /path" regex) answer ``status``."""
        body = {"message": "Server Error" if status == 500 else "Bad Gateway"}
        with self._lock:
            self._faults += [_Fault(status, after, {}, body, match)] * n

    def rate_limit_next(self, n: int = 1, *, kind: str = "secondary", retry_after: int = 1,
                        reset_in: int = 3600, match: str = ".*") -> None:
        """The next ``n`` matching requests hit a secondary (Retry-After) or primary (reset time) limit."""
        if kind == "secondary":
            body = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                               "again.", "documentation_url": DOCS + "/overview/rate-limits-for-the-rest-api"}
            headers = {"Retry-After": str(retry_after)}
        else:
            body = {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS}
            headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + reset_in)}
        with self._lock:
            self._faults += [_Fault(403, False, headers, body, match)] * n

    def take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if re.fullmatch(fault.match, f"{method} {path}"):
                    return self._faults.pop(i)
        return None

    def pulls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.pull_json(pr, full=True) for pr in sorted(self.prs.values(), key=lambda p: p.number)]

    def pr(self, number: int) -> PullRequest:
        return self.prs[number]

    def calls(self, method: str, pattern: str) -> int:
        """How many requests matched ``method`` and the path regex ``pattern``."""
        return sum(1 for m, p, _ in self.requests if m == method and re.fullmatch(pattern, p))

    def merge(self, number: int, *, by: str = "alice") -> str:
        """Merge like the merge button: a real merge commit on the base branch; returns its sha."""
        with self._lock:
            pr = self._refresh(self.prs[number])
            if pr.state != "open" or pr.draft:
                raise AssertionError(f"PR #{number} cannot be merged: state={pr.state} draft={pr.draft}")
            head_sha = self.sha(pr.head)
            sha = merge_into(self.bare, f"refs/heads/{pr.head}", pr.base,
                             f"Merge pull request #{number} from {self.owner}/{pr.head}\n\n{pr.title}")
            now = utcnow()
            pr.state, pr.merged_at, pr.closed_at, pr.updated_at = "closed", now, now, now
            pr.merge_commit_sha, pr.merged_by, pr.frozen_head_sha = sha, by, head_sha
            return sha

    def close(self, number: int) -> None:
        """A human closes the PR without merging."""
        with self._lock:
            pr = self._refresh(self.prs[number])
            pr.frozen_head_sha = self.sha(pr.head)
            pr.state, pr.closed_at, pr.updated_at = "closed", utcnow(), utcnow()

    def review(self, number: int, by: str, state: str = "APPROVED") -> None:
        """A reviewer submits a review: GitHub drops them from the requested reviewers."""
        with self._lock:
            pr = self.prs[number]
            pr.reviews.append((by, state, utcnow()))
            pr.requested_reviewers = [r for r in pr.requested_reviewers if r != by]

    def mark_ready(self, number: int) -> None:
        with self._lock:
            self.prs[number].draft = False

    # ------------------------------------------------------------------ git

    def sha(self, branch: str) -> str | None:
        return git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", cwd=self.bare,
                   check=False) or None

    def _refresh(self, pr: PullRequest) -> PullRequest:
        """GitHub closes an open PR whose head branch was deleted."""
        if pr.state == "open" and self.sha(pr.head) is None:
            pr.state, pr.closed_at, pr.updated_at = "closed", utcnow(), utcnow()
        return pr

    def _diffstat(self, pr: PullRequest) -> dict[str, int]:
        head = pr.frozen_head_sha or self.sha(pr.head)
        base = self.sha(pr.base)
        if not head or not base:
            return {"commits": 0, "additions": 0, "deletions": 0, "changed_files": 0}
        rng = f"{base}...{head}" if not pr.merged_at else f"{pr.merge_commit_sha}^1...{head}"
        stat = [ln.split("\t") for ln in git("diff", "--numstat", rng, cwd=self.bare).splitlines() if ln]
        return {"commits": int(git("rev-list", "--count", rng.replace("...", ".."), cwd=self.bare)),
                "additions": sum(int(s[0]) for s in stat if s[0].isdigit()),
                "deletions": sum(int(s[1]) for s in stat if s[1].isdigit()), "changed_files": len(stat)}

    # ------------------------------------------------------------------ JSON

    def pull_json(self, pr: PullRequest, *, full: bool) -> dict[str, Any]:
        self._refresh(pr)
        head_sha = pr.frozen_head_sha if pr.state == "closed" else self.sha(pr.head)
        return pull_json(self.api_url, self.full_name, pr, head_sha or "0" * 40, self.sha(pr.base) or "",
                         [self.label(n) for n in pr.labels], self._diffstat(pr) if full else None, full=full)

    def label(self, name: str) -> dict[str, Any]:
        ident = self.label_ids.setdefault(name, 2000 + len(self.label_ids))
        return label_json(self.api_url, self.full_name, name, ident)

    # ------------------------------------------------------------------ routing

    def route(self, method: str, path: str, query: dict[str, str], body: Any, login: str) -> tuple[int, Any, dict]:
        """Dispatch an authenticated API request; returns (status, json, extra headers)."""
        if method == "GET" and path == "/rate_limit":
            core = {"limit": 5000, "remaining": self.rate_remaining, "reset": int(time.time()) + 3600,
                    "used": 5000 - self.rate_remaining, "resource": "core"}
            return 200, {"resources": {"core": core}, "rate": core}, {}
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not m:
            raise self._unhandled(method, path)
        if f"{m.group(1)}/{m.group(2)}".lower() != self.full_name.lower():
            raise ApiError(404, "Not Found", docs=DOCS + "/repos/repos#get-a-repository")
        rest = m.group(3) or ""
        with self._lock:
            return self._route_repo(method, rest, query, body, login, path)

    def _unhandled(self, method: str, path: str) -> ApiError:
        self.unhandled.append(f"{method} {path}")
        return ApiError(404, "Not Found")

    def _route_repo(self, method: str, rest: str, query: dict[str, str], body: Any, login: str,
                    path: str) -> tuple[int, Any, dict]:
        from tests.support import github_emulator_routes as r
        table = [("GET", r"", r.get_repo), ("GET", r"/pulls", r.list_pulls), ("POST", r"/pulls", r.create_pull),
                 ("GET", r"/pulls/(\d+)", r.get_pull), ("PATCH", r"/pulls/(\d+)", r.edit_pull),
                 ("GET", r"/pulls/(\d+)/requested_reviewers", r.get_reviewers),
                 ("POST", r"/pulls/(\d+)/requested_reviewers", r.request_reviewers),
                 ("GET", r"/pulls/(\d+)/reviews", r.get_reviews),
                 ("GET", r"/issues/(\d+)/labels", r.get_labels), ("POST", r"/issues/(\d+)/labels", r.add_labels),
                 ("GET", r"/git/ref/heads/(.+)", r.get_ref)]
        for verb, pattern, fn in table:
            mm = re.fullmatch(pattern, rest)
            if mm and verb == method:
                return fn(self, *mm.groups(), query=query, body=body, login=login)
        raise self._unhandled(method, path)

    def new_number(self) -> int:
        n, self._next_number = self._next_number, self._next_number + 1
        return n


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (e.g. a SIGKILLed operator) is normal here, not an error."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler: auth, faults, JSON, rate-limit headers, git smart HTTP."""

    emu: GitHubEmulator
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self, method: str) -> None:
        raw = self._read_body()
        url = urlsplit(self.path)
        if re.match(r"^/[^/]+/[^/]+\.git/", url.path):
            from tests.support.github_emulator_routes import serve_git
            status, headers, payload = serve_git(self.emu, method, url, self.headers, raw)
            return self._send_raw(status, headers, payload, url.path, method)
        try:
            status, data, extra = self._api(method, url, raw)
        except ApiError as err:
            status, data, extra = err.status, err.body(), err.headers
        self._send_json(status, data, extra, url.path, method)

    def _api(self, method: str, url: Any, raw: bytes) -> tuple[int, Any, dict]:
        emu = self.emu
        if not self.headers.get("User-Agent"):
            raise ApiError(403, "Request forbidden by administrative rules. Please make sure your request has a "
                                "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).")
        login = self._auth()
        if method != "GET" and not emu.tokens[self._token()].write:
            perm = "pull_requests=write" if "/pulls" in url.path or "/issues" in url.path else "contents=write"
            raise ApiError(403, "Resource not accessible by personal access token",
                           headers={"X-Accepted-GitHub-Permissions": perm})
        with emu._lock:
            emu.rate_remaining = max(0, emu.rate_remaining - 1)
        fault = emu.take_fault(method, url.path)
        if fault and not fault.after:
            raise fault.error()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(400, "Problems parsing JSON") from None
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        result = emu.route(method, url.path, query, body, login)
        if fault:  # after=True: the write happened, the client still sees an error
            raise fault.error()
        return result

    def _token(self) -> str:
        auth = self.headers.get("Authorization", "")
        m = re.fullmatch(r"(?i)(?:token|bearer)\s+(\S+)", auth.strip())
        return m.group(1) if m else ""

    def _auth(self) -> str:
        if not self.headers.get("Authorization"):
            raise ApiError(401, "Requires authentication")
        tok = self.emu.tokens.get(self._token())
        if tok is None:
            raise ApiError(401, "Bad credentials")
        return tok.login

    def _rate_headers(self) -> dict[str, str]:
        remaining = self.emu.rate_remaining
        return {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(int(time.time()) + 3600), "X-RateLimit-Used": str(5000 - remaining),
                "X-RateLimit-Resource": "core", "X-GitHub-Media-Type": "github.v3; format=json",
                "X-GitHub-Request-Id": f"EMU:{len(self.emu.requests):06d}"}

    def _send_json(self, status: int, data: Any, extra: dict, path: str, method: str) -> None:
        payload = b"" if status == 204 else json.dumps(data).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **self._rate_headers(), **extra}
        self._send_raw(status, headers, payload, path, method)

    def _send_raw(self, status: int, headers: dict[str, str], payload: bytes, path: str, method: str) -> None:
        with self.emu._lock:
            self.emu.requests.append((method, path, status))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

