"""The plan as a merge-request note, kept up to date: one note per environment.

The note carries a hidden marker, ``<!-- numsync-plan:ENV -->``. On every run all notes of
the merge request are listed (every page); the one holding the marker **and written by the
token's own user** (``GET /user``) is updated (PUT), and only when there is none is a note
created (POST), so later pushes edit the same note instead of adding new ones, and a person
who quotes the marker never has their note edited. Authentication is a project (or personal)
access token with the ``api`` scope, sent in the ``PRIVATE-TOKEN`` header; the token never
appears in messages or errors.

GitLab rate-limits its API and answers 429 with ``Retry-After``; such answers, and 5xx
answers to reads and edits, are retried after ``Retry-After`` (capped) or a bounded backoff.
A note creation that got a 5xx is not resent blindly: the notes are listed again first.

Where GitLab's predefined variables are present (``CI_API_V4_URL``, ``CI_PROJECT_ID``,
``CI_MERGE_REQUEST_IID``, ``CI_COMMIT_SHA``, ``CI_JOB_URL``) they are the defaults; outside
GitLab the same values can be given explicitly (see ``numsync gitlab comment --help``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote

import httpx

from numsync.errors import GitLabError, NoReviewedPlan

#: The CI/CD variable holding the access token by default.
TOKEN_VARIABLE = "NUMSYNC_GITLAB_TOKEN"
#: GitLab refuses notes above 1,000,000 characters; a plan that long is unreadable anyway.
DEFAULT_MAX_CHARS = 60_000
#: Attempts per request when GitLab answers 429 or 5xx (or the connection fails).
ATTEMPTS = 5
#: Longest wait between attempts, whatever Retry-After asks for (seconds).
MAX_WAIT = 60.0
#: The hidden comment recording which commit a note's plan is for.
_COMMIT_MARK = re.compile(r"<!-- numsync-commit:([0-9a-f]{7,64}) -->")


def marker(environment: str) -> str:
    """The hidden HTML comment that identifies the plan note of ``environment``."""
    safe = re.sub(r"[^A-Za-z0-9_.:/-]", "_", environment)
    return f"<!-- numsync-plan:{safe} -->"


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """Which merge request to comment on: ``api_url`` is GitLab's ``/api/v4`` base."""

    api_url: str
    project: str
    iid: str

    @property
    def notes_path(self) -> str:
        return f"/projects/{quote(self.project, safe='')}/merge_requests/{quote(self.iid, safe='')}/notes"


def truncate(markdown: str, max_chars: int, pointer: str) -> str:
    """``markdown`` cut at a line end so that, with ``pointer`` appended, it fits in ``max_chars``.

    A ``<details>`` block left open by the cut is closed, and a table is ended before the pointer.
    """
    if len(markdown) <= max_chars:
        return markdown
    budget = max(0, max_chars - len(pointer) - len("\n\n```\n\n</details>\n\n"))
    cut = markdown.rfind("\n", 0, budget)
    head = markdown[: cut if cut > 0 else budget].rstrip("\n")
    closing = []
    if sum(1 for line in head.splitlines() if line.lstrip().startswith("```")) % 2:
        closing.append("```")  # a fenced block left open
    # only the renderer's own block lines count: a live value "</details>" sits inside a table row's code span
    lines = head.splitlines()
    if sum(line.startswith("<details>") for line in lines) > sum(line == "</details>" for line in lines):
        closing.append("</details>")
    # a blank line ends a table (and a paragraph) before the pointer: it must never read as a row
    return "\n\n".join([head, *closing, pointer])


def note_body(
    environment: str,
    markdown: str,
    *,
    commit: str | None = None,
    artifacts_url: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    footer: Sequence[str] = (),
    source: str | None = None,
    target: str | None = None,
) -> str:
    """The whole note: marker, the plan's Markdown (truncated to fit), the commit(s) it is for, ``footer`` lines.

    With ``source`` and ``target`` (the merge request's branch heads), ``commit`` is their merge:
    the note names all three, since that merge result is what was planned.
    """
    tail = []
    if commit and source and target:
        tail.append(
            f"Planned for commit `{commit[:12]}`: the merge of source `{source[:12]}` into target `{target[:12]}`."
        )
    elif commit:
        tail.append(f"Planned for commit `{commit[:12]}`.")
    tail += list(footer)
    end = ("\n\n" + "\n\n".join(tail) + "\n") if tail else ""
    where = (
        f"[the job's artifacts]({artifacts_url}) (`plan.md`)"
        if artifacts_url
        else "the plan job's artifacts (`plan.md`)"
    )
    pointer = f"**The plan is too long for a note and was truncated here.** The full plan is in {where}.\n"
    head = marker(environment) + "\n" + (commit_mark(commit) + "\n" if commit else "")
    body = truncate(markdown, max(200, max_chars - len(head) - len(end)), pointer)
    return head + body.rstrip("\n") + end


def commit_mark(commit: str) -> str:
    """The hidden comment naming the commit a note's plan is for."""
    return f"<!-- numsync-commit:{commit} -->"


def outdated_line(previous_body: str, commit: str | None) -> str | None:
    """ "The plan for X above replaces the plan for Y", when the note held a plan for another commit."""
    found = _COMMIT_MARK.search(previous_body)
    if not found or not commit or found[1] == commit:
        return None
    return f"The plan for commit `{found[1][:12]}` that this note showed before is outdated."


def _wait_seconds(response: httpx.Response | None, attempt: int) -> float:
    header = response.headers.get("Retry-After") if response is not None else None
    if header is not None:
        try:
            return min(MAX_WAIT, max(0.0, float(header)))
        except ValueError:
            pass
    return min(MAX_WAIT, 2.0**attempt)


class GitLabAPI:
    """GitLab's REST API under ``api_url`` (``…/api/v4``) with one token (httpx); 429 and passing 5xx retried."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = api_url
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={"PRIVATE-TOKEN": token, "User-Agent": "numsync"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _request(
        self, method: str, path: str, *, resend_on_5xx: bool = True, missing_ok: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """One API call; 429 (and, where ``resend_on_5xx``, 5xx and connection failures) retried.
        With ``missing_ok`` a 404 is returned instead of raised."""
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if resend_on_5xx and not last and isinstance(exc, httpx.TransportError):
                    self._sleep(_wait_seconds(None, attempt))
                    continue
                raise GitLabError(f"cannot reach GitLab at {self.api_url}: {type(exc).__name__}: {exc}") from None
            retryable = response.status_code == 429 or (resend_on_5xx and response.status_code >= 500)
            if retryable and not last:
                self._sleep(_wait_seconds(response, attempt))
                continue
            if response.status_code >= 400 and not (missing_ok and response.status_code == 404):
                raise GitLabError(_refusal(response, method, path))
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get_list(self, path: str, params: Mapping[str, Any] | None = None, *, max_pages: int = 100) -> list[Any]:
        """``GET path``: a JSON list, every page (100 items each, following ``X-Next-Page``) up to ``max_pages``."""
        items: list[Any] = []
        page = "1"
        seen: set[str] = set()
        while page and len(seen) < max_pages:
            if page in seen:
                raise GitLabError(f"GitLab's X-Next-Page went back to page {page} of {path}")
            seen.add(page)
            response = self._request("GET", path, params={**(params or {}), "per_page": 100, "page": page})
            batch = response.json()
            if not isinstance(batch, list):
                raise GitLabError(f"GitLab answered GET {path} with something other than a list")
            items += batch
            page = response.headers.get("X-Next-Page", "") if batch else ""
        return items

    def get_file(self, path: str) -> bytes | None:
        """``GET path`` as bytes (a job artifact's file), or None when GitLab answers 404 (no such job or file)."""
        response = self._request("GET", path, missing_ok=True)
        return None if response.status_code == 404 else response.content


class GitLabNotes(GitLabAPI):
    """The notes of one merge request, through GitLab's REST API (httpx)."""

    def __init__(
        self,
        mr: MergeRequest,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(mr.api_url, token, timeout=timeout, transport=transport, sleep=sleep)
        self.mr = mr
        self._user_id: object = None

    def user_id(self) -> object:
        """The id of the token's own user (``GET /user``), asked once."""
        if self._user_id is None:
            me = self._request("GET", "/user").json()
            if not isinstance(me, dict) or "id" not in me:
                raise GitLabError("GitLab answered GET /user without the user's id")
            self._user_id = me["id"]
        return self._user_id

    def list_notes(self) -> list[dict[str, Any]]:
        """Every note of the merge request, oldest first: every page GitLab has (100 notes each)."""
        notes: list[dict[str, Any]] = []
        page = "1"
        seen: set[str] = set()
        while page:
            if page in seen:
                raise GitLabError(f"GitLab's X-Next-Page went back to page {page} of {self.mr.notes_path}")
            seen.add(page)
            response = self._request(
                "GET",
                self.mr.notes_path,
                params={"per_page": 100, "page": page, "sort": "asc", "order_by": "created_at"},
            )
            batch = response.json()
            if not isinstance(batch, list):
                raise GitLabError(f"GitLab answered GET {self.mr.notes_path} with something other than a list of notes")
            notes += batch
            page = response.headers.get("X-Next-Page", "") if batch else ""
        return notes

    def find(self, mark: str) -> dict[str, Any] | None:
        """The first note holding ``mark`` that the token's own user wrote (not a system note)."""
        me = self.user_id()
        for note in self.list_notes():
            author = note.get("author")
            mine = isinstance(author, dict) and author.get("id") == me
            if mine and not note.get("system") and mark in str(note.get("body", "")):
                return note
        return None

    def create(self, body: str, *, mark: str | None = None) -> dict[str, Any]:
        """Post a note. After a 5xx it is not resent blindly: with ``mark``, the notes are listed
        again and a note GitLab did create is returned instead of posting a second one."""
        for attempt in range(ATTEMPTS):
            try:
                return dict(self._request("POST", self.mr.notes_path, resend_on_5xx=False, json={"body": body}).json())
            except GitLabError:
                if mark is None or attempt == ATTEMPTS - 1:
                    raise
                landed = self.find(mark)
                if landed is not None and landed.get("body") == body:
                    return landed
                self._sleep(_wait_seconds(None, attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def update(self, note_id: int | str, body: str) -> dict[str, Any]:
        return dict(
            self._request("PUT", f"{self.mr.notes_path}/{quote(str(note_id), safe='')}", json={"body": body}).json()
        )

    def upsert(self, mark: str, body: str) -> tuple[str, dict[str, Any]]:
        """Update the note holding ``mark``, or create one: ``("updated"|"created"|"unchanged", note)``."""
        existing = self.find(mark)
        if existing is None:
            return "created", self.create(body, mark=mark)
        if existing.get("body") == body:
            return "unchanged", existing
        planned = _COMMIT_MARK.search(body)
        outdated = outdated_line(str(existing.get("body", "")), planned[1] if planned else None)
        if outdated:
            body = body.rstrip("\n") + "\n\n" + outdated + "\n"
        return "updated", self.update(existing["id"], body)


def _refusal(response: httpx.Response, method: str, path: str) -> str:
    try:
        detail = response.json()
        detail = detail.get("message") or detail.get("error") or detail if isinstance(detail, dict) else detail
    except ValueError:
        detail = response.text[:200]
    message = f"GitLab answered HTTP {response.status_code} to {method} {path}: {detail}"
    if response.status_code == 401:
        message += ". The token was refused: check that it is valid and not expired."
    elif response.status_code == 403:
        message += (
            ". The token lacks a permission: it needs the api scope and at least the Reporter role in the project."
        )
    elif response.status_code == 404:
        message += (
            ". Check the project and merge request, pipeline, job or issue (and that the token can see the project)."
        )
    return message


#: A merge-request label that lifts a safety check in the plan job: this prefix and the flag without its dashes.
OVERRIDE_LABEL_PREFIX = "numsync::"


def override_label(flag: str) -> str:
    """The merge-request label that makes the plan job lift (and record) ``flag``: ``numsync::override-thresholds``."""
    return OVERRIDE_LABEL_PREFIX + flag.lstrip("-")


def override_hint(violations: Sequence[Any]) -> str:
    """How to lift safety ``violations`` (numsync.core.safety.Violation) in the GitLab pipeline."""
    if any(v.flag is None for v in violations):
        return "In GitLab CI: at least one of these checks has no override; change numsync.yaml or the desired files in a reviewed merge request."
    labels = ", ".join(f'"{override_label(flag)}"' for flag in dict.fromkeys(v.flag for v in violations))
    return (
        f"In GitLab CI: to apply anyway after reviewing the plan, add the label(s) {labels} to the merge request (a new "
        "one, if it is merged already) and run its pipeline again: the plan then records the override with who ran it "
        "and why (the merge request's title), the note shows it, and the merge applies that plan."
    )


def _project_path(project: str) -> str:
    return f"/projects/{quote(project, safe='')}"


class GitLabProject(GitLabAPI):
    """One project's merge requests, pipelines, jobs, artifacts, deployments and issues (GitLab's REST API)."""

    def __init__(self, api_url: str, project: str, token: str, **options: Any) -> None:
        super().__init__(api_url, token, **options)
        self.project = project
        self.base = _project_path(project)

    def merge_requests_of_commit(self, commit: str) -> list[dict[str, Any]]:
        """``GET …/repository/commits/:sha/merge_requests``: the merge requests ``commit`` belongs to."""
        path = f"{self.base}/repository/commits/{quote(commit, safe='')}/merge_requests"
        found = self._request("GET", path).json()
        if not isinstance(found, list):
            raise GitLabError(f"GitLab answered GET {path} with something other than a list of merge requests")
        return [mr for mr in found if isinstance(mr, dict)]

    def merge_request_pipelines(self, iid: str) -> list[dict[str, Any]]:
        """``GET …/merge_requests/:iid/pipelines``, newest first."""
        found = self.get_list(f"{self.base}/merge_requests/{quote(iid, safe='')}/pipelines")
        return sorted((p for p in found if isinstance(p, dict)), key=lambda p: int(p.get("id", 0)), reverse=True)

    def pipelines(self, **params: str) -> list[dict[str, Any]]:
        """``GET …/pipelines`` filtered by ``params`` (``ref``, ``source``, ``status``), newest first, one page."""
        found = self.get_list(f"{self.base}/pipelines", {**params, "order_by": "id", "sort": "desc"}, max_pages=1)
        return [p for p in found if isinstance(p, dict)]

    def pipeline_jobs(self, pipeline_id: object, scopes: Sequence[str] = ("success",)) -> list[dict[str, Any]]:
        """``GET …/pipelines/:id/jobs?scope[]=…``: the jobs of a pipeline in these states."""
        found = self.get_list(f"{self.base}/pipelines/{pipeline_id}/jobs", {"scope[]": list(scopes)})
        return [j for j in found if isinstance(j, dict)]

    def job_artifact(self, job_id: object, artifact_path: str) -> bytes | None:
        """``GET …/jobs/:job_id/artifacts/*artifact_path``: one file of a job's artifacts, None when there is none."""
        return self.get_file(f"{self.base}/jobs/{job_id}/artifacts/{quote(artifact_path)}")

    def deployments(self, environment: str, status: str = "success") -> list[dict[str, Any]]:
        """``GET …/deployments?environment=…&status=…``, newest first, one page."""
        params = {"environment": environment, "status": status, "order_by": "id", "sort": "desc"}
        return [d for d in self.get_list(f"{self.base}/deployments", params, max_pages=1) if isinstance(d, dict)]

    def issues(self, label: str, state: str = "opened") -> list[dict[str, Any]]:
        """``GET …/issues?labels=…&state=…``: the project's issues with ``label``."""
        return [
            i for i in self.get_list(f"{self.base}/issues", {"labels": label, "state": state}) if isinstance(i, dict)
        ]

    def create_issue(self, title: str, description: str, labels: Sequence[str]) -> dict[str, Any]:
        """``POST …/issues``."""
        body = {"title": title, "description": description, "labels": ",".join(labels)}
        return dict(self._request("POST", f"{self.base}/issues", resend_on_5xx=False, json=body).json())

    def update_issue(self, iid: object, **fields: str) -> dict[str, Any]:
        """``PUT …/issues/:iid`` (``description``, ``title``, ``state_event="close"``)."""
        return dict(self._request("PUT", f"{self.base}/issues/{iid}", json=fields).json())


@dataclass(frozen=True, slots=True)
class ReviewedArtifact:
    """The artifact file of the plan job that ran in the latest successful pipeline of the merged merge request."""

    merge_request: str
    pipeline_id: int
    job_id: int
    job_url: str | None
    content: bytes
    labels: tuple[str, ...] = ()

    def where(self) -> str:
        return f"merge request !{self.merge_request}, pipeline #{self.pipeline_id}, job #{self.job_id}"


def merged_merge_request(found: Sequence[Mapping[str, Any]], commit: str) -> Mapping[str, Any] | None:
    """Of the merge requests of ``commit``, the merged one it is the result of: the one whose merge, squash or
    head commit it is; else the one merged last (``merged_at``). None when none is merged."""
    merged = [mr for mr in found if mr.get("state") == "merged" and "iid" in mr]
    own = [mr for mr in merged if commit in (mr.get("merge_commit_sha"), mr.get("squash_commit_sha"), mr.get("sha"))]
    candidates = own or merged
    return max(candidates, key=lambda mr: str(mr.get("merged_at") or "")) if candidates else None


def find_reviewed_artifact(api: GitLabProject, commit: str, job_name: str, artifact: str) -> ReviewedArtifact:
    """The reviewed ``artifact`` for ``commit``: its merged merge request → that MR's latest successful pipeline →
    its successful job ``job_name`` → the file. Raises NoReviewedPlan, saying which step found nothing."""
    mr = merged_merge_request(api.merge_requests_of_commit(commit), commit)
    if mr is None:
        raise NoReviewedPlan(
            f"commit {commit[:12]} is the result of no merged merge request, so no plan was reviewed for it"
        )
    iid = str(mr["iid"])
    pipelines = [p for p in api.merge_request_pipelines(iid) if p.get("status") == "success"]
    if not pipelines:
        raise NoReviewedPlan(f"merge request !{iid} has no successful pipeline, so no plan of it passed review")
    pipeline = pipelines[0]
    jobs = [j for j in api.pipeline_jobs(pipeline["id"]) if j.get("name") == job_name]
    if not jobs:
        raise NoReviewedPlan(
            f"the latest successful pipeline #{pipeline['id']} of merge request !{iid} has no successful job {job_name!r}"
        )
    job = max(jobs, key=lambda j: int(j.get("id", 0)))  # a retried job: its last run
    content = api.job_artifact(job["id"], artifact)
    if content is None:
        raise NoReviewedPlan(f"job #{job['id']} ({job_name!r}) of merge request !{iid} kept no artifact {artifact!r}")
    labels = tuple(str(label) for label in mr.get("labels") or ())
    return ReviewedArtifact(iid, int(pipeline["id"]), int(job["id"]), job.get("web_url"), content, labels)


def merge_requests_of(
    api_url: str,
    project: str,
    commit: str,
    token: str,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """The IIDs of the merged merge requests ``commit`` belongs to (``GET …/repository/commits/:sha/merge_requests``)."""
    with GitLabProject(api_url, project, token, transport=transport, sleep=sleep) as api:
        found = api.merge_requests_of_commit(commit)
    return [str(mr["iid"]) for mr in found if mr.get("state") == "merged" and "iid" in mr]
