"""numsync as a team installs it (issue 18, item 2): the wheel and sdist ``python -m build`` makes, installed into
fresh virtualenvs, run every command, ship their schemas and the emulator, and plan against that emulator; and
the pre-commit hooks run from a clone of this repository with ``pre-commit try-repo``.

The fresh virtualenvs get the package alone (``pip install --no-deps``); its dependencies come from this test
run's own site-packages through a ``.pth`` line, so the test needs no package index and proves that what is
imported is the installed copy, never this checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from cli_workspace import CREDENTIALS, OTP_SETTING

import numsync

ROOT = Path(__file__).resolve().parents[1]

#: Every command and subcommand of the CLI, each run with --help from the installed script.
COMMANDS = [
    ["validate"],
    ["fmt"],
    ["plan"],
    ["plan", "diff"],
    ["apply"],
    ["show"],
    ["export"],
    ["import"],
    ["init"],
    ["drift"],
    ["environments"],
    ["schema"],
    ["gitlab", "comment"],
    ["gitlab", "report-apply"],
    ["emulator"],
]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and the sdist of this checkout, built as a release is (``python -m build``, isolated)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _one(folder: Path, pattern: str) -> Path:
    [path] = folder.glob(pattern)
    return path


def fresh_venv(where: Path, package: Path) -> Path:
    """A new virtualenv at ``where`` with ``package`` installed alone; its dependencies from this run's site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # A plain path line: the directory goes on sys.path after the venv's own site-packages, and its .pth files
    # (this checkout's editable install among them) are not run.
    Path(purelib, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", "utf-8")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(package)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return where / "bin"


def clean_environ(**extra: str) -> dict[str, str]:
    """The process environment without this run's virtualenv or checkout on any path, plus ``extra``."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "NUMSYNC_CONFIG", "NUMSYNC_ENV") and not k.startswith("OCP_")
    }
    environ["PATH"] = os.pathsep.join(p for p in environ.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return environ | extra


def run(
    bin_dir: Path, *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "numsync"), *args],
        cwd=cwd,
        env=dict(env or clean_environ()),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def wheel_bin(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_venv(tmp_path_factory.mktemp("wheel-venv") / "venv", _one(dist, "numsync-*.whl"))


def test_the_wheel_holds_the_schemas_and_the_emulator(dist: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(_one(dist, "numsync-*.whl")).namelist())
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "numsync").rglob("*") if p.suffix in (".py", ".json")}
    shipped = {n for n in shipped if "__pycache__" not in n}
    assert shipped <= names, sorted(shipped - names)
    assert {"numsync/schema/desired.schema.json", "numsync/emulator/app.py"} <= names


def test_the_installed_wheel_runs_every_command(wheel_bin: Path, tmp_path: Path) -> None:
    where = run(wheel_bin, "--version", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip() == f"numsync, version {numsync.__version__}"
    imported = subprocess.run(
        [str(wheel_bin / "python"), "-c", "import numsync; print(numsync.__file__)"],
        cwd=tmp_path,
        env=clean_environ(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(imported).is_relative_to(wheel_bin.parent), imported  # the installed copy, not this checkout
    for command in COMMANDS:
        result = run(wheel_bin, *command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "Usage: numsync" in result.stdout, (command, result.stderr)
    for args, schema in ((["schema"], "desired"), (["schema", "--config"], "config")):
        result = run(wheel_bin, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == json.loads(
            (ROOT / "numsync" / "schema" / f"{schema}.schema.json").read_text()
        )


class InstalledEmulator:
    """``numsync emulator`` started from an installed script; stopped with SIGTERM (killed if it hangs)."""

    def __init__(self, bin_dir: Path, folder: Path) -> None:
        self.port_file = folder / "port"
        self.process = subprocess.Popen(
            [str(bin_dir / "numsync"), "emulator", "--port", "0", "--port-file", str(self.port_file)]
            + ["--otp-period", "1", "--otp-look-around", "2"],
            env=clean_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def __enter__(self) -> str:
        deadline = time.monotonic() + 30
        while not self.port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise AssertionError(f"the installed emulator did not start: {self.process.stderr!r}")
            time.sleep(0.05)
        return f"http://127.0.0.1:{int(self.port_file.read_text())}"

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


def test_the_installed_wheel_adopts_a_tenant_and_plans_against_its_own_emulator(
    wheel_bin: Path, tmp_path: Path
) -> None:
    with InstalledEmulator(wheel_bin, tmp_path) as url:
        env = clean_environ(**CREDENTIALS)
        team = tmp_path / "team"
        team.mkdir()
        # --group: init's own export would log in with the default 30 s two-factor period, not the test emulator's
        groups = ["--group", "ocp-qa", "--group", "uk-care"]
        init = run(
            wheel_bin, "init", "--region", "EU1", "--base-url", url + "/integrations", *groups, cwd=team, env=env
        )
        assert init.returncode == 0, init.stderr
        config = team / "numsync.yaml"
        config.write_text(config.read_text("utf-8") + f"    {OTP_SETTING}\n", "utf-8")  # the test emulator's policy
        imported = run(wheel_bin, "import", cwd=team, env=env)
        assert imported.returncode == 0, imported.stderr
        assert list((team / "desired").glob("*.yaml"))
        assert run(wheel_bin, "validate", cwd=team, env=env).returncode == 0
        assert run(wheel_bin, "fmt", "--check", cwd=team, env=env).returncode == 0
        plan = run(wheel_bin, "plan", "--detailed-exitcode", "--out", "plan.json", cwd=team, env=env)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "No changes" in plan.stdout
        assert run(wheel_bin, "show", "plan.json", cwd=team, env=env).returncode == 0
        drift = run(wheel_bin, "drift", cwd=team, env=env)
        assert drift.returncode == 0, drift.stdout + drift.stderr


def test_the_installed_sdist_runs_and_ships_its_schemas(dist: Path, tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", _one(dist, "numsync-*.tar.gz"))
    version = run(bin_dir, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"numsync, version {numsync.__version__}"
    schema = run(bin_dir, "schema", cwd=tmp_path)
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"]
    with InstalledEmulator(bin_dir, tmp_path) as url:
        team = tmp_path / "team"
        (team / "desired").mkdir(parents=True)
        (team / "numsync.yaml").write_text(
            textwrap.dedent(
                f"""\
                environments:
                  test:
                    base_url: {url}/integrations
                    desired: desired
                    groups: {{ocp-qa: {{}}}}
                    {OTP_SETTING}
                """
            ),
            "utf-8",
        )
        assert run(bin_dir, "import", cwd=team, env=clean_environ(**CREDENTIALS)).returncode == 0
        plan = run(bin_dir, "plan", cwd=team, env=clean_environ(**CREDENTIALS))
        assert plan.returncode == 0 and "No changes" in plan.stdout, plan.stdout + plan.stderr


# ---------------------------------------------------------------------------- pre-commit try-repo

#: What pip says when it cannot reach a package index: the hook's virtualenv cannot be built then.
UNREACHABLE = ("Failed to establish a new connection", "Temporary failure in name resolution", "Network is unreachable")


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding this work tree's files (committed and not) in one commit: what a team's
    pre-commit fetches from numsync's URL at a tag, and, unlike try-repo's own shadow commit of a dirty work
    tree, with the files not yet added to git too."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of numsync")
    listed = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    target = tmp_path_factory.mktemp("hook-repo") / "numsync"
    for name in filter(None, (n.decode() for n in listed)):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    for args in (["init", "--quiet"], ["add", "."], ["commit", "--quiet", "-m", "numsync at this work tree"]):
        subprocess.run([git, *args], cwd=target, check=True, env=clean_environ(**GIT_IDENTITY))
    return target


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}

#: Canonical (numsync fmt) and valid.
GOOD = '# the team\'s numbers\ngroup_id: "ocp-qa"\nnumbers:\n  "+12015550123": {}\n  "+12015550124": {}\n'


def team_repository(folder: Path, files: dict[str, str]) -> Path:
    """A team's repository: numsync.yaml and desired/ only, staged (pre-commit runs on what git knows)."""
    (folder / "desired").mkdir(parents=True, exist_ok=True)
    (folder / "numsync.yaml").write_text(
        "environments:\n  prod:\n    region: EU1\n    desired: desired\n    default_provider: twilio\n"
        "    groups: {ocp-qa: {}, uk-care: {}}\n",
        "utf-8",
    )
    for name, text in files.items():
        (folder / "desired" / name).write_text(text, "utf-8")
    if not (folder / ".git").exists():
        subprocess.run(["git", "init", "--quiet"], cwd=folder, check=True)
    subprocess.run(["git", "add", "."], cwd=folder, check=True)
    return folder


def try_repo(repo: Path, team: Path) -> subprocess.CompletedProcess[str]:
    """Every hook of ``repo`` on all of ``team``'s files. (try-repo builds the hook's virtualenv in a store of its
    own each time: about half a minute with a warm pip cache.)"""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pre-commit"), "try-repo", str(repo), "--all-files"],
        cwd=team,
        env=clean_environ(**GIT_IDENTITY),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0 and any(s in result.stdout + result.stderr for s in UNREACHABLE):
        if os.environ.get("NUMSYNC_TESTS_NEED_INDEX"):  # .ci/run sets it: there the index must be reachable
            pytest.fail("pre-commit could not reach the package index to build the hook's virtualenv")
        pytest.skip("pre-commit needs a package index to build the hook's virtualenv, and none is reachable")
    return result


@pytest.mark.slow
def test_pre_commit_try_repo_runs_the_hooks_from_the_repository(hook_repo: Path, tmp_path: Path) -> None:
    team = team_repository(tmp_path / "team", {"ocp-qa.yaml": GOOD})
    passed = try_repo(hook_repo, team)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"^numsync validate\.+Passed$", passed.stdout, re.M), passed.stdout
    assert re.search(r"^numsync fmt --check\.+Passed$", passed.stdout, re.M), passed.stdout

    uk = 'group_id: "uk-care"\nnumbers:\n  "+442079460900": {}\n  "+4420794609": {}\n'  # too short for a UK number
    team_repository(team, {"ocp-qa.yaml": GOOD.replace('"ocp-qa"', "ocp-qa"), "uk-care.yaml": uk})
    failed = try_repo(hook_repo, team)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"^numsync validate\.+Failed$", failed.stdout, re.M), failed.stdout
    assert "desired/uk-care.yaml:4:3:" in failed.stdout, failed.stdout  # located, in the hook's output
    assert "would reformat desired/ocp-qa.yaml" in failed.stdout  # valid, but not in canonical form
