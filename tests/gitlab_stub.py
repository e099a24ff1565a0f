"""A local stand-in for GitLab's REST API as numsync uses it, for tests (http.server on 127.0.0.1, port 0).

Behaves as GitLab documents:

- ``GET /api/v4/user``: the token's own user (``{"id", "username"}``);
- ``GET/POST /api/v4/projects/{project}/merge_requests/{iid}/notes``, paginated with ``per_page``
  (at most 100, as GitLab caps it) and ``page``, the next page in ``X-Next-Page``; every note has
  ``author.id``; ``PUT .../notes/{id}`` edits a note, 403 unless the token's user wrote it;
- ``GET /api/v4/projects/{project}/repository/commits/{sha}/merge_requests``: the merge
  requests a commit belongs to;
- pipelines and jobs: ``GET …/merge_requests/{iid}/pipelines``, ``GET …/pipelines`` (``ref``,
  ``source``, ``status``; ``order_by=id&sort=desc``), ``GET …/pipelines/{id}/jobs`` (``scope[]``),
  paginated; ``GET …/jobs/{id}/artifacts/{path}``: the file's bytes, 404 when the job kept none;
- ``GET …/deployments`` (``environment``, ``status``; newest first);
- issues: ``GET …/issues`` (``labels``: all of them, ``state``), ``POST …/issues``
  (``title``, ``description``, ``labels`` comma-separated), ``PUT …/issues/{iid}``
  (``title``, ``description``, ``state_event`` ``close`` / ``reopen``);
- 404 for a project the stub does not know (when ``projects`` is set), 401 for a wrong token;
- ``throttle``: answers queued by a test (e.g. ``(429, {"Retry-After": "1"})``), served first.

Records every request.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_NOTES = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/([^/]+)/notes(?:/(\d+))?$")
_COMMIT_MRS = re.compile(r"^/api/v4/projects/([^/]+)/repository/commits/([^/]+)/merge_requests$")
_PROJECT = re.compile(r"^/api/v4/projects/([^/]+)(/.*)$")
_MR_PIPELINES = re.compile(r"^/merge_requests/([^/]+)/pipelines$")
_PIPELINE_JOBS = re.compile(r"^/pipelines/(\d+)/jobs$")
_ARTIFACT = re.compile(r"^/jobs/(\d+)/artifacts/(.+)$")
_ISSUE = re.compile(r"^/issues(?:/(\d+))?$")
#: The user the stub's token belongs to.
BOT = {"id": 77, "username": "project_4242_bot"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class GitLabStub:
    """``with GitLabStub(token="t") as gitlab: ... gitlab.api_url, gitlab.notes[(project, iid)], gitlab.requests``."""

    token: str = "glpat-test-token"
    notes: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    next_id: int = 1000
    projects: set[str] | None = None
    throttle: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    commit_merge_requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pipelines: dict[int, dict[str, Any]] = field(default_factory=dict)
    merge_request_pipelines: dict[str, list[int]] = field(default_factory=dict)
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[tuple[int, str], bytes] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)

    def __enter__(self) -> GitLabStub:
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                stub.requests.append(
                    Request(
                        self.command,
                        url.path,
                        parse_qs(url.query),
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                status, payload, headers = stub.answer(
                    self.command, url.path, parse_qs(url.query), self.headers.get("PRIVATE-TOKEN"), body
                )
                raw_file = isinstance(payload, bytes)  # a job artifact's file, as GitLab sends it
                data = payload if raw_file else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw_file else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/api/v4"

    def add_note(
        self, project: str, iid: str, body: str, *, system: bool = False, author: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self.next_id += 1
        who = author or {"id": 5, "username": "someone"}
        note = {"id": self.next_id, "body": body, "system": system, "author": who}
        self.notes.setdefault((project, iid), []).append(note)
        return note

    def add_pipeline(
        self,
        *,
        sha: str,
        status: str = "success",
        source: str = "push",
        ref: str = "main",
        merge_request: str | None = None,
    ) -> int:
        """A pipeline (of ``merge_request`` when given: ``merge_request_event``); returns its id."""
        self.next_id += 1
        if merge_request is not None:
            source, ref = "merge_request_event", f"refs/merge-requests/{merge_request}/head"
            self.merge_request_pipelines.setdefault(merge_request, []).append(self.next_id)
        self.pipelines[self.next_id] = {"id": self.next_id, "sha": sha, "ref": ref, "status": status, "source": source}
        return self.next_id

    def add_job(
        self, pipeline: int, name: str, *, status: str = "success", artifacts: dict[str, bytes] | None = None
    ) -> int:
        """A job of ``pipeline`` that kept ``artifacts`` (path → bytes); returns its id."""
        self.next_id += 1
        self.jobs[self.next_id] = {
            "id": self.next_id,
            "name": name,
            "status": status,
            "pipeline": {"id": pipeline},
            "web_url": f"http://gitlab.invalid/jobs/{self.next_id}",
        }
        for path, content in (artifacts or {}).items():
            self.artifacts[(self.next_id, path)] = content
        return self.next_id

    def add_deployment(self, environment: str, sha: str, job: int, *, status: str = "success") -> None:
        self.next_id += 1
        self.deployments.append(
            {
                "id": self.next_id,
                "sha": sha,
                "status": status,
                "environment": {"name": environment},
                "deployable": {"id": job},
            }
        )

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method in ("POST", "PUT")]

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], token: str | None, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if token != self.token:
            return 401, {"message": "401 Unauthorized"}, {}
        if self.throttle:
            status, headers = self.throttle.pop(0)
            return status, {"message": f"{status} answered by the stub"}, headers
        if path == "/api/v4/user" and method == "GET":
            return 200, BOT, {}
        commit = _COMMIT_MRS.match(path)
        if commit and method == "GET":
            if self.projects is not None and unquote(commit[1]) not in self.projects:
                return 404, {"message": "404 Project Not Found"}, {}
            return 200, self.commit_merge_requests.get(commit[2], []), {}
        project_call = _PROJECT.match(path)
        if project_call and not _NOTES.match(path):
            if self.projects is not None and unquote(project_call[1]) not in self.projects:
                return 404, {"message": "404 Project Not Found"}, {}
            return self._project_answer(method, project_call[2], query, body)
        match = _NOTES.match(path)
        if not match:
            return 404, {"message": "404 Not Found"}, {}
        project, iid, note_id = unquote(match[1]), unquote(match[2]), match[3]
        if self.projects is not None and project not in self.projects:
            return 404, {"message": "404 Project Not Found"}, {}
        notes = self.notes.setdefault((project, iid), [])
        if method == "GET" and note_id is None:
            per_page = min(100, int(query.get("per_page", ["20"])[0]))
            page = int(query.get("page", ["1"])[0])
            chunk = notes[(page - 1) * per_page : page * per_page]
            more = page * per_page < len(notes)
            return 200, chunk, {"X-Next-Page": str(page + 1) if more else "", "X-Total": str(len(notes))}
        if method == "POST" and note_id is None:
            return 201, self.add_note(project, iid, body["body"], author=BOT), {}
        if method == "PUT" and note_id is not None:
            for note in notes:
                if note["id"] == int(note_id):
                    if note["author"].get("id") != BOT["id"]:
                        return 403, {"message": "403 Forbidden"}, {}
                    note["body"] = body["body"]
                    return 200, note, {}
            return 404, {"message": "404 Note Not Found"}, {}
        return 405, {"message": "405 Method Not Allowed"}, {}

    def _project_answer(
        self, method: str, rest: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        """Pipelines, jobs, artifacts, deployments and issues of a project (``rest``: the path after the project)."""
        one = {k: v[0] for k, v in query.items()}
        if method == "GET" and (found := _MR_PIPELINES.match(rest)):
            ids = self.merge_request_pipelines.get(unquote(found[1]), [])
            return self._page([self.pipelines[i] for i in sorted(ids, reverse=True)], one)
        if method == "GET" and rest == "/pipelines":
            listed = [
                p
                for p in sorted(self.pipelines.values(), key=lambda p: p["id"], reverse=True)
                if all(p.get(k) == one[k] for k in ("ref", "source", "status") if k in one)
            ]
            return self._page(listed, one)
        if method == "GET" and (found := _PIPELINE_JOBS.match(rest)):
            scopes = query.get("scope[]", [])
            listed = [
                j
                for j in self.jobs.values()
                if j["pipeline"]["id"] == int(found[1]) and (not scopes or j["status"] in scopes)
            ]
            return self._page(listed, one)
        if method == "GET" and (found := _ARTIFACT.match(rest)):
            content = self.artifacts.get((int(found[1]), unquote(found[2])))
            if content is None:
                return 404, {"message": "404 Not Found"}, {}
            return 200, content, {}
        if method == "GET" and rest == "/deployments":
            listed = [
                d
                for d in sorted(self.deployments, key=lambda d: d["id"], reverse=True)
                if d["environment"]["name"] == one.get("environment", d["environment"]["name"])
                and d["status"] == one.get("status", d["status"])
            ]
            return self._page(listed, one)
        issue = _ISSUE.match(rest)
        if issue and method == "GET" and issue[1] is None:
            wanted = {label for label in one.get("labels", "").split(",") if label}
            state = one.get("state", "all")
            listed = [i for i in self.issues if wanted <= set(i["labels"]) and state in ("all", i["state"])]
            return self._page(listed, one)
        if issue and method == "POST" and issue[1] is None:
            self.next_id += 1
            created = {
                "id": self.next_id,
                "iid": len(self.issues) + 1,
                "title": body["title"],
                "description": body.get("description", ""),
                "labels": [label for label in str(body.get("labels", "")).split(",") if label],
                "state": "opened",
                "web_url": f"http://gitlab.invalid/issues/{len(self.issues) + 1}",
            }
            self.issues.append(created)
            return 201, created, {}
        if issue and method == "PUT" and issue[1] is not None:
            for existing in self.issues:
                if existing["iid"] == int(issue[1]):
                    for key in ("title", "description"):
                        if key in body:
                            existing[key] = body[key]
                    event = body.get("state_event")
                    if event in ("close", "reopen"):
                        existing["state"] = "closed" if event == "close" else "opened"
                    return 200, existing, {}
            return 404, {"message": "404 Issue Not Found"}, {}
        return 404, {"message": "404 Not Found"}, {}

    @staticmethod
    def _page(items: list[Any], query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        per_page = min(100, int(query.get("per_page", "20")))
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(items)
        return 200, chunk, {"X-Next-Page": str(page + 1) if more else "", "X-Total": str(len(items))}
