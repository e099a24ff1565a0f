"""The reusable CI definition runs from a team's own repository (issue 18, item 2).

A throwaway repository holds only numsync.yaml, desired/ and a .gitlab-ci.yml that includes
templates/numsync.gitlab-ci.yml — by ``include: remote`` from a local HTTP server, as a team
includes it from another place — and sets its environments. gitlab-ci-local (shell executor)
runs validate, the merge request's plan, the merge's apply and a scheduled drift there, against an OCP emulator
and a stand-in for GitLab's API. numsync is installed by the template's own step, from
NUMSYNC_PIP_SPEC: a wheel built from this checkout in the test. To stay offline, pip gets
``PIP_NO_INDEX``/``PIP_NO_DEPS`` and the jobs find numsync's dependencies on ``PYTHONPATH``
(this interpreter's site-packages); numsync itself comes from the wheel in the job's .venv.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_workspace import TOTP_SECRET, emulator_process
from gitlab_stub import GitLabStub
from test_gitlab_ci_local import DEMO_OTP_PERIOD, GIT, PREDEFINED, project_files, required_tool

from numsync import __version__
from numsync.gitlab import marker
from numsync.workflow.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "glpat-template-test"
PROJECT_ID, MR_IID = "5151", "3"
CHANGED = "+442079460958"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """numsync's wheel, built offline from a copy of this checkout (the checkout itself stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for relative in project_files():
        target = source / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    done = subprocess.run([*command, "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [built] = out.glob("numsync-*.whl")
    return built


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def template_url() -> Iterator[str]:
    """templates/ served over HTTP on 127.0.0.1, as an include: remote would fetch it."""
    handler = functools.partial(_Quiet, directory=str(ROOT / "templates"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/numsync.gitlab-ci.yml"
    server.shutdown()
    server.server_close()
    thread.join(5)


def git(path: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=path, capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def test_the_template_runs_from_a_repository_holding_only_numsync_yaml_and_desired(
    tmp_path: Path, wheel: Path, template_url: str
) -> None:
    gcl = required_tool("gitlab-ci-local", "npm install -g gitlab-ci-local@4.70.1")
    required_tool("rsync", "apt-get install rsync")
    repo = tmp_path / "numbers"
    repo.mkdir()
    shutil.copy2(ROOT / "numsync.yaml", repo / "numsync.yaml")
    shutil.copytree(ROOT / "desired", repo / "desired")
    (repo / ".gitlab-ci.yml").write_text(
        f'include:\n  - remote: "{template_url}"\n\n'
        ".environments:\n  parallel:\n    matrix:\n      - NUMSYNC_ENV: [demo]\n"
    )
    git(repo, "init", "-q", "-b", "main")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "our numbers")
    git(repo, "push", "-q", "origin", "HEAD:main")
    assert {p.split("/")[0] for p in git(repo, "ls-files").splitlines()} == {
        ".gitlab-ci.yml",
        "desired",
        "numsync.yaml",
    }

    site_packages = sysconfig.get_paths()["purelib"]  # numsync's dependencies; numsync itself is not in it
    assert not (Path(site_packages) / "numsync").exists()
    base_python = Path(sys.executable).resolve().parent  # the interpreter these site-packages belong to

    with (
        emulator_process(otp_period=DEMO_OTP_PERIOD, otp_look_around=1) as emulator,
        GitLabStub(token=TOKEN) as gitlab,
    ):

        def run_job(job: str, *variables: str) -> tuple[int, str, Path | None]:
            env = {
                k: v for k, v in os.environ.items() if not k.startswith(("OCP_", "NUMSYNC_", "CI_", "GITLAB_", "PIP_"))
            }
            env |= {"HOME": str(tmp_path / "home"), "FORCE_COLOR": "0", "NO_COLOR": "1"}
            env["PATH"] = f"{base_python}{os.pathsep}{env.get('PATH', '')}"
            command = [
                gcl, "--force-shell-executor", "--no-shell-isolation", "--no-color", "--ignore-predefined-vars", PREDEFINED,
                "--variable", "CI_DEFAULT_BRANCH=main",
                "--variable", f"NUMSYNC_PIP_SPEC={wheel}",
                "--variable", "PIP_NO_INDEX=1", "--variable", "PIP_NO_DEPS=1",
                "--variable", f"PYTHONPATH={site_packages}",
                "--variable", f"OCP_EMULATOR_URL={emulator.url}",
                "--variable", f"NUMSYNC_STATE_DIR={tmp_path / 'numsync-state'}",
                "--variable", f"CI_API_V4_URL={gitlab.api_url}",
                "--variable", f"CI_PROJECT_ID={PROJECT_ID}",
                "--variable", f"NUMSYNC_GITLAB_TOKEN={TOKEN}",
                *(arg for v in variables for arg in ("--variable", v)),
                job,
            ]  # fmt: skip
            done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
            root = repo / ".gitlab-ci-local" / "artifacts"
            name = job.split(":")[0]
            found = [d for d in root.iterdir() if d.name.startswith(name)] if root.is_dir() else []
            return done.returncode, (done.stdout + done.stderr)[-6000:], found[0] if found else None

        # every pipeline: validate, with numsync installed by the template's own step, from the wheel
        code, log, _ = run_job("validate", "CI_PIPELINE_SOURCE=merge_request_event")
        assert code == 0 and "PASS  validate" in log, log
        installed = repo / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        assert list(installed.glob("site-packages/numsync-*.dist-info")), "numsync was not installed from the wheel"
        assert f"numsync, version {__version__}" in log

        # a merge request: its plan job, read-only, posts the plan
        git(repo, "checkout", "-q", "-b", "leeds")
        yaml_file = repo / "desired" / "uk-care.yaml"
        yaml_file.write_text(yaml_file.read_text().replace("after-hours routing", "after-hours routing via Leeds", 1))
        git(repo, "commit", "-qam", "uk-care: via Leeds")
        code, log, planned = run_job(
            "plan: [demo]",
            "CI_PIPELINE_SOURCE=merge_request_event",
            f"CI_MERGE_REQUEST_IID={MR_IID}",
            "OCP_READONLY_USERNAME=viewer",
            "OCP_READONLY_PASSWORD=viewer-secret",
            f"OCP_READONLY_TOTP_SECRET={TOTP_SECRET}",
        )
        assert code == 0 and "PASS  plan: [demo]" in log, log
        assert planned is not None
        plan_json = (planned / "plan.json").read_bytes()
        plan = Plan.from_json(json.loads(plan_json))
        [change] = [c for c in plan.changes if c.number == CHANGED]
        assert "via Leeds" in str(change.fields) and emulator.stats()["put_requests"] == 0
        [note] = gitlab.notes[(PROJECT_ID, MR_IID)]
        assert note["body"].startswith(marker("demo"))

        # the merge: apply runs the reviewed plan
        git(repo, "checkout", "-q", "main")
        git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'leeds'", "leeds")
        git(repo, "push", "-q", "origin", "HEAD:main")
        merged = git(repo, "rev-parse", "HEAD")
        gitlab.commit_merge_requests[merged] = [{"iid": int(MR_IID), "state": "merged", "merge_commit_sha": merged}]
        pipeline = gitlab.add_pipeline(sha=git(repo, "rev-parse", "HEAD^2"), merge_request=MR_IID)
        gitlab.add_job(pipeline, "plan: [demo]", artifacts={"plan.json": plan_json})
        code, log, applied = run_job(
            "apply: [demo]",
            "CI_PIPELINE_SOURCE=push",
            "OCP_USERNAME=demo",
            "OCP_PASSWORD=demo-secret",
            f"OCP_TOTP_SECRET={TOTP_SECRET}",
        )
        assert code == 0 and "PASS  apply: [demo]" in log, log
        assert "Verified: live now matches desired." in log
        assert emulator.numbers()[CHANGED]["NOTE"].startswith("Main line, after-hours routing via Leeds")
        assert emulator.stats()["put_requests"] == plan.request_count()
        assert applied is not None and (applied / "plan.json").read_bytes() == plan_json

        # a schedule: drift, with the last applied commit from the environment's deployments
        job = gitlab.add_job(
            gitlab.add_pipeline(sha=merged), "apply: [demo]",
            artifacts={"apply-report.json": (applied / "apply-report.json").read_bytes()},
        )  # fmt: skip
        gitlab.add_deployment("demo", merged, job)
        code, log, drifted = run_job(
            "drift: [demo]",
            "CI_PIPELINE_SOURCE=schedule",
            "OCP_READONLY_USERNAME=viewer",
            "OCP_READONLY_PASSWORD=viewer-secret",
            f"OCP_READONLY_TOTP_SECRET={TOTP_SECRET}",
        )
        assert code == 0 and "PASS  drift: [demo]" in log, log
        assert f"last applied: commit {merged[:12]}" in log and "No drift." in log
        assert drifted is not None and json.loads((drifted / "drift.json").read_text())["drifted"] is False
