"""A local stand-in for GitLab's merge-request notes API, for tests (http.server on 127.0.0.1, port 0).

Serves ``GET/POST /api/v4/projects/{project}/merge_requests/{iid}/notes`` (paginated with
``per_page``/``page`` and ``X-Next-Page``, like GitLab) and ``PUT .../notes/{id}``; requires
the ``PRIVATE-TOKEN`` header to equal ``token``; records every request.
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

    def add_note(self, project: str, iid: str, body: str, *, system: bool = False) -> dict[str, Any]:
        self.next_id += 1
        note = {"id": self.next_id, "body": body, "system": system, "author": {"username": "someone"}}
        self.notes.setdefault((project, iid), []).append(note)
        return note

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method in ("POST", "PUT")]

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], token: str | None, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if token != self.token:
            return 401, {"message": "401 Unauthorized"}, {}
        match = _NOTES.match(path)
        if not match:
            return 404, {"message": "404 Not Found"}, {}
        project, iid, note_id = unquote(match[1]), unquote(match[2]), match[3]
        notes = self.notes.setdefault((project, iid), [])
        if method == "GET" and note_id is None:
            per_page = int(query.get("per_page", ["20"])[0])
            page = int(query.get("page", ["1"])[0])
            chunk = notes[(page - 1) * per_page : page * per_page]
            more = page * per_page < len(notes)
            return 200, chunk, {"X-Next-Page": str(page + 1) if more else "", "X-Total": str(len(notes))}
        if method == "POST" and note_id is None:
            return 201, self.add_note(project, iid, body["body"]), {}
        if method == "PUT" and note_id is not None:
            for note in notes:
                if note["id"] == int(note_id):
                    note["body"] = body["body"]
                    return 200, note, {}
            return 404, {"message": "404 Note Not Found"}, {}
        return 405, {"message": "405 Method Not Allowed"}, {}
