"""A local stand-in for GitLab's REST API as numsync uses it, for tests (http.server on 127.0.0.1, port 0).

Behaves as GitLab documents:

- ``GET /api/v4/user``: the token's own user (``{"id", "username"}``);
- ``GET/POST /api/v4/projects/{project}/merge_requests/{iid}/notes``, paginated with ``per_page``
  (at most 100, as GitLab caps it) and ``page``, the next page in ``X-Next-Page``; every note has
  ``author.id``; ``PUT .../notes/{id}`` edits a note, 403 unless the token's user wrote it;
- ``GET /api/v4/projects/{project}/repository/commits/{sha}/merge_requests``: the merge
  requests a commit belongs to;
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
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
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
