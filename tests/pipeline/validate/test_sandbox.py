"""Tests for the bubblewrap sandbox: isolation, a scrubbed environment and real resource limits."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from diffusellm.errors import SandboxError
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox, Limits, SandboxResult, check_bubblewrap

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

PY = sys.executable


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.fixture
def sandbox() -> BubblewrapSandbox:
    return BubblewrapSandbox()


def run_py(sb: BubblewrapSandbox, code: str, workdir: Path, *args: str,
           limits: Limits | None = None) -> SandboxResult:
    return sb.run([PY, "-c", code, *args], workdir=workdir, limits=limits)


def leftovers(marker: str) -> list[int]:
    """Host processes whose command line carries `marker`."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry.name))
    return found


def wait_gone(marker: str, patience_s: float = 20.0) -> list[int]:
    """Poll until no host process carries `marker` (or patience runs out); return what is left."""
    deadline = time.monotonic() + patience_s
    while (left := leftovers(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP listener on the host's loopback; connecting to it works from outside the sandbox."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_check_bubblewrap_accepts_the_installed_one() -> None:
    check_bubblewrap()


def test_missing_bubblewrap_raises_with_install_hint(workdir: Path) -> None:
    with pytest.raises(SandboxError) as caught:
        check_bubblewrap("no-such-bwrap-binary")
    assert "apt-get install bubblewrap" in str(caught.value)
    with pytest.raises(SandboxError):
        BubblewrapSandbox(bwrap="no-such-bwrap-binary").run(["true"], workdir=workdir)


def test_bad_workdir_is_a_sandbox_error(sandbox: BubblewrapSandbox, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="not a directory"):
        sandbox.run(["true"], workdir=tmp_path / "missing")


def test_workdir_is_the_writable_cwd(sandbox: BubblewrapSandbox, workdir: Path) -> None:
    (workdir / "input.txt").write_text("from host\n")
    result = sandbox.run(
        ["sh", "-c", "pwd; cat input.txt; echo made inside > out.txt; mkdir sub && touch sub/x"],
        workdir=workdir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(workdir.resolve()), "from host"]
    assert (workdir / "out.txt").read_text() == "made inside\n"
    assert (workdir / "sub" / "x").is_file()


def test_failing_command_is_a_result_not_an_error(
    sandbox: BubblewrapSandbox, workdir: Path
) -> None:
    failed = sandbox.run(["sh", "-c", "echo out; echo err >&2; exit 3"], workdir=workdir)
    assert (failed.returncode, failed.stdout, failed.stderr) == (3, "out\n", "err\n")
    assert not failed.timed_out and failed.killed_reason is None
    missing = sandbox.run(["no-such-command-here"], workdir=workdir)
    assert missing.returncode == 127
    assert "no-such-command-here" in missing.stderr


NET_PROBE = """
import socket, sys
port = int(sys.argv[1])
for name, addr in [("loopback", ("127.0.0.1", port)), ("internet", ("1.1.1.1", 53))]:
    try:
        socket.create_connection(addr, timeout=3).close()
        print(name, "open")
    except OSError as exc:
        print(name, "blocked", type(exc).__name__)
try:
    socket.getaddrinfo("pypi.org", 443)
    print("dns open")
except OSError as exc:
    print("dns blocked", type(exc).__name__)
"""


def test_network_is_blocked(sandbox: BubblewrapSandbox, workdir: Path, listener: int) -> None:
    socket.create_connection(("127.0.0.1", listener), timeout=3).close()  # reachable from here
    result = run_py(sandbox, NET_PROBE, workdir, str(listener))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["loopback", "blocked"], ["internet", "blocked"], ["dns", "blocked"]
    ], lines


WRITE_PROBE = """
import os, sys
for target in sys.argv[1:]:
    try:
        with open(target, "w") as handle:
            handle.write("x")
        print("WROTE", target)
    except OSError as exc:
        print("refused", target, type(exc).__name__)
"""


def test_writes_outside_the_workdir_are_refused(
    sandbox: BubblewrapSandbox, workdir: Path
) -> None:
    targets = ["/usr/evil", "/etc/evil", "/evil", "/root/evil", f"{sys.prefix}/evil",
               f"{Path(PY).parent}/evil", "/proc/evil"]
    result = run_py(sandbox, WRITE_PROBE, workdir, *targets)
    assert result.returncode == 0, result.stderr
    assert "WROTE" not in result.stdout
    assert result.stdout.count("refused") == len(targets)
    assert not any(Path(t).exists() for t in targets[:5])


VISIBLE_PROBE = """
import os, sys
for path in sys.argv[1:]:
    print(path, os.path.exists(path))
"""


def test_host_files_are_not_visible(sandbox: BubblewrapSandbox, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    host_secret = tmp_path / "outside.txt"
    host_secret.write_text("secret")
    repo_file = Path(__file__).resolve()
    home_entries = [str(p) for p in Path.home().iterdir()
                    if not Path(sys.base_prefix).is_relative_to(p)][:5]
    paths = [str(host_secret), str(repo_file), str(repo_file.parents[2] / "pyproject.toml"),
             "/etc/shadow", "/etc/pip.conf", *home_entries]
    result = run_py(sandbox, VISIBLE_PROBE, work, *paths)
    assert result.returncode == 0, result.stderr
    assert host_secret.exists() and repo_file.exists()
    assert result.stdout.splitlines() == [f"{p} False" for p in paths]


ENV_PROBE = """
import os, glob
print(sorted(os.environ))
print(os.environ.get("KEPT"), os.environ.get("EXTRA"))
seen = ""
for name in glob.glob("/proc/*/environ"):
    try:
        seen += open(name, "rb").read().decode("utf-8", "replace")
    except OSError:
        pass
print("canary-visible" if "canary-7d1f" in seen else "canary-hidden")
"""


def test_worker_secrets_do_not_reach_the_sandbox(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFFUSELLM_CANARY", "canary-7d1f")
    monkeypatch.setenv("GITHUB_TOKEN", "canary-7d1f")
    sandbox = BubblewrapSandbox(pass_env={"KEPT": "kept"})
    result = sandbox.run([PY, "-c", ENV_PROBE], workdir=workdir, env={"EXTRA": "extra"})
    assert result.returncode == 0, result.stderr
    names, values, canary = result.stdout.splitlines()
    assert "DIFFUSELLM_CANARY" not in names and "GITHUB_TOKEN" not in names
    assert values == "kept extra"
    assert canary == "canary-hidden"
    assert "canary-7d1f" not in result.stdout + result.stderr


BOUNDED_FORKS = """
import errno, os, sys, time
made = 0
for _ in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except OSError as exc:
        print("stopped", errno.errorcode[exc.errno], made)
        break
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    made += 1
else:
    print("unlimited", made)
"""

FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


@pytest.mark.timeout(120)
def test_fork_bomb_is_contained(sandbox: BubblewrapSandbox, workdir: Path) -> None:
    marker = f"bomb-{uuid.uuid4().hex}"
    # First a bounded one: if the limit did not hold this stops at 2000, not at the host's end.
    bounded = run_py(sandbox, BOUNDED_FORKS, workdir, "2000", marker,
                     limits=Limits(processes=32, wall_seconds=60))
    assert bounded.stdout.split()[:2] == ["stopped", "EAGAIN"], bounded.stdout + bounded.stderr
    assert int(bounded.stdout.split()[2]) < 32
    assert wait_gone(marker) == []  # the sleeping children died with the sandbox

    bomb = run_py(sandbox, FORK_BOMB, workdir, marker,
                  limits=Limits(processes=32, wall_seconds=3))
    assert bomb.timed_out
    assert bomb.killed_reason is not None and "wall-clock" in bomb.killed_reason
    assert wait_gone(marker) == []
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork


def test_memory_hog_is_contained(sandbox: BubblewrapSandbox, workdir: Path) -> None:
    limits = Limits(memory_mb=512)
    hog = run_py(sandbox, "b = bytearray(8 * 1024 ** 3); print('allocated')", workdir,
                 limits=limits)
    assert hog.returncode != 0
    assert "MemoryError" in hog.stderr and "allocated" not in hog.stdout
    modest = run_py(sandbox, "b = bytearray(64 * 1024 ** 2); print('allocated')", workdir,
                    limits=limits)
    assert modest.returncode == 0 and modest.stdout == "allocated\n"


def test_cpu_limit_stops_a_busy_loop(sandbox: BubblewrapSandbox, workdir: Path) -> None:
    result = run_py(sandbox, "while True: pass", workdir,
                    limits=Limits(cpu_seconds=1, wall_seconds=60))
    assert not result.timed_out
    assert result.killed_reason is not None and "CPU time" in result.killed_reason


@pytest.mark.timeout(60)
def test_hung_command_is_killed_at_the_wall_limit(
    sandbox: BubblewrapSandbox, workdir: Path
) -> None:
    marker = f"hang-{uuid.uuid4().hex}"
    hang = "import subprocess, sys, time\n" \
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', sys.argv[1]]," \
        " start_new_session=True)\n" \
        "time.sleep(600)\n"
    result = run_py(sandbox, hang, workdir, marker, limits=Limits(wall_seconds=2))
    assert result.timed_out
    assert result.returncode != 0
    assert result.killed_reason is not None and "wall-clock limit of 2s" in result.killed_reason
    assert wait_gone(marker) == []  # also the child that left the process group


def test_file_size_limit(sandbox: BubblewrapSandbox, workdir: Path) -> None:
    code = "open('big', 'wb').write(b'x' * (3 * 1024 * 1024))"
    result = run_py(sandbox, code, workdir, limits=Limits(file_size_mb=1))
    assert result.returncode != 0
    assert (workdir / "big").stat().st_size <= 1024 * 1024


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid switch only happens when run as root")
def test_runs_as_an_unprivileged_user_when_root(
    sandbox: BubblewrapSandbox, workdir: Path
) -> None:
    result = sandbox.run(["sh", "-c", "id -u; grep NoNewPrivs /proc/self/status"], workdir=workdir)
    uid, nnp = result.stdout.splitlines()
    assert uid != "0"
    assert nnp.split() == ["NoNewPrivs:", "1"]


def test_tmp_is_sized_by_its_own_limit(sandbox: BubblewrapSandbox, workdir: Path) -> None:
    code = (
        "import os\n"
        "try:\n"
        "    with open('/tmp/fill', 'wb') as f:\n"
        "        for _ in range(64): f.write(b'x' * 1024 * 1024)\n"
        "    print('wrote all')\n"
        "except OSError as e:\n"
        "    print('stopped', e.errno, os.path.getsize('/tmp/fill') // (1024 * 1024))\n"
    )
    result = run_py(sandbox, code, workdir, limits=Limits(tmp_mb=16, memory_mb=4096))
    assert result.stdout.split()[:2] == ["stopped", "28"], result.stdout + result.stderr  # ENOSPC
    assert int(result.stdout.split()[2]) <= 16


@pytest.mark.timeout(120)
def test_a_work_copy_that_outgrows_its_cap_is_killed(sandbox: BubblewrapSandbox, workdir: Path) -> None:
    # Many files each under the file size limit: only the work copy's own cap stops them.
    code = (
        "import time\n"
        "for i in range(400):\n"
        "    open(f'f{i}', 'wb').write(b'x' * 1024 * 1024)\n"
        "time.sleep(600)\n"
    )
    result = run_py(sandbox, code, workdir, limits=Limits(workdir_mb=32, file_size_mb=2, wall_seconds=300))
    assert not result.timed_out
    assert result.killed_reason is not None and "work copy" in result.killed_reason
    assert result.returncode != 0
