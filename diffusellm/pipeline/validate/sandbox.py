"""Phase 6 sandbox: run a check command with bubblewrap: offline, read-only system, limited."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from diffusellm.errors import SandboxError

INSTALL_HINT = "install bubblewrap: apt-get install bubblewrap (Fedora: dnf install bubblewrap)"
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
"""Per stream; a command that prints more keeps only the last MAX_OUTPUT_BYTES in the result."""
NOBODY = 65534
_DISK_POLL_S = 1.0

_TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = (
    "passwd", "group", "hosts", "host.conf", "nsswitch.conf", "gai.conf", "localtime", "timezone",
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "os-release", "protocols",
    "services", "mime.types",
)
"""The /etc entries programs need to start and resolve localhost; nothing with credentials in it."""
_NETWORK_ETC = ("resolv.conf", "ssl", "ca-certificates", "pki")
"""Also bound for a command given the network (an install step): name resolution and CA roots."""

# Runs inside the sandbox as the command's parent: set the limits, drop to the sandbox user, exec.
# RLIMIT_NPROC is ignored for host uid 0, so (as root) the command runs as an unprivileged uid.
_LAUNCHER = r"""
import os, resource as r, sys
cpu, mem, nproc, fsize, uid = (int(a) for a in sys.argv[1:6])
def cap(kind, soft, hard):
    old = r.getrlimit(kind)[1]
    hard = hard if old == r.RLIM_INFINITY else min(hard, old)
    r.setrlimit(kind, (min(soft, hard), hard))
cap(r.RLIMIT_CPU, cpu, cpu + 5)
cap(r.RLIMIT_AS, mem, mem)
cap(r.RLIMIT_FSIZE, fsize, fsize)
cap(r.RLIMIT_CORE, 0, 0)
cap(r.RLIMIT_NPROC, nproc, nproc)
if uid >= 0:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
os.closerange(3, 65536)
try:
    os.execvp(sys.argv[6], sys.argv[6:])
except OSError as e:
    sys.stderr.write("sandbox: cannot run %r: %s\n" % (sys.argv[6], e))
    os._exit(127)
"""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed command."""

    cpu_seconds: int = 600
    memory_mb: int = 4096
    processes: int = 512
    file_size_mb: int = 512
    wall_seconds: float = 900.0
    tmp_mb: int = 1024
    """Size of the sandbox's /tmp (a tmpfs: memory, on top of each process's `memory_mb`)."""
    workdir_mb: int = 4096
    """The most the work copy may hold while the command runs; over it, the sandbox is killed."""


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed command did; a failing command is a result, never an exception."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    killed_reason: str | None


class Sandbox(Protocol):
    """Runs a command with `workdir` as its only writable place and nothing else of the host.

    `ro_paths` are also visible, read-only (a repository's test environment); `network` gives the
    command the host's network (only an environment's install step asks for it).
    """

    def run(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        ro_paths: Sequence[Path] = (),
        network: bool = False,
    ) -> SandboxResult: ...


def check_bubblewrap(bwrap: str = "bwrap") -> None:
    """Raise SandboxError unless bubblewrap exists and can build the sandbox this module uses."""
    path = _find_bwrap(bwrap)
    argv = [path, *_namespace_args(os.geteuid() == 0), "--ro-bind", "/", "/", "--", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"bubblewrap at {path} could not run: {exc}", hint=INSTALL_HINT) from exc
    if done.returncode != 0:
        raise SandboxError(
            f"bubblewrap at {path} cannot create a sandbox here: {done.stderr.strip()}",
            hint="run the worker as root, or enable unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1); in a container allow "
            "namespaces (e.g. docker --security-opt seccomp=unconfined --cap-add SYS_ADMIN)",
        )


class BubblewrapSandbox:
    """The Sandbox backend built on bubblewrap (`sandbox.type: bubblewrap`).

    Run as root, the command runs as `sandbox_uid` (nobody) in the host user namespace, so
    RLIMIT_NPROC holds; that uid's process count is shared by concurrent sandboxes, and the
    workdir's files are handed to it (chown) before each run. Run as another user, bubblewrap
    makes a user namespace and the process limit counts only that sandbox's processes.
    """

    def __init__(
        self,
        *,
        bwrap: str = "bwrap",
        limits: Limits = Limits(),  # noqa: B008 - frozen dataclass, safe as a default
        pass_env: Mapping[str, str] | None = None,
        ro_paths: Sequence[Path] = (),
        sandbox_uid: int = NOBODY,
    ) -> None:
        self._bwrap = bwrap
        self._limits = limits
        self._pass_env = dict(pass_env or {})
        self._ro_paths = tuple(ro_paths)
        if sandbox_uid <= 0:
            raise SandboxError(
                f"sandbox_uid {sandbox_uid} is privileged",
                hint="use an unprivileged uid such as 65534 (nobody)",
            )
        self._uid = sandbox_uid if os.geteuid() == 0 else None

    def run(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        ro_paths: Sequence[Path] = (),
        network: bool = False,
    ) -> SandboxResult:
        """Run `argv` in `workdir` (bound read-write, the cwd); kill it at the wall-clock limit."""
        if not argv:
            raise SandboxError("no command given to the sandbox", hint="pass a non-empty argv")
        lim = limits or self._limits
        work = _checked_workdir(workdir)
        if self._uid is not None:
            _hand_over(work, self._uid)
        full_env = self._environment(env)
        command = [
            _find_bwrap(self._bwrap),
            *_namespace_args(self._uid is not None, network),
            *_mount_args(work, [*self._python_paths(), *(p for p in ro_paths if p.exists())],
                         lim.tmp_mb, network),
            "--chdir", str(work), "--die-with-parent", "--new-session",
            "--", sys.executable, "-I", "-S", "-c", _LAUNCHER,
            *_launcher_args(lim, self._uid), *argv,
        ]
        return _execute(tuple(argv), command, full_env, lim, work)

    def _environment(self, env: Mapping[str, str] | None) -> dict[str, str]:
        path_dirs = [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        base = {
            "PATH": os.pathsep.join(dict.fromkeys(path_dirs)),
            "HOME": "/tmp/home",
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        return {**base, **self._pass_env, **(env or {})}

    def _python_paths(self) -> list[Path]:
        found = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), *self._ro_paths]
        return [p for p in found if p.exists()]


def _find_bwrap(bwrap: str) -> str:
    path = shutil.which(bwrap)
    if path is None:
        raise SandboxError(f"bubblewrap ({bwrap!r}) was not found on PATH", hint=INSTALL_HINT)
    return path


def _checked_workdir(workdir: Path) -> Path:
    work = workdir.resolve()
    if not work.is_dir():
        raise SandboxError(
            f"sandbox workdir {workdir} is not a directory",
            hint="pass the writable copy of the checkout the command should run in",
        )
    if work == Path("/") or _covered(work, (Path("/proc"), Path("/dev"))):
        raise SandboxError(
            f"refusing to use {work} as a sandbox workdir", hint="pass a temporary copy"
        )
    return work


def _hand_over(work: Path, uid: int) -> None:
    """Give the workdir tree to the sandbox user so the unprivileged command can write there."""
    try:
        os.chown(work, uid, uid)
        for root, dirs, files in os.walk(work):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, uid)
    except OSError as exc:
        raise SandboxError(
            f"cannot hand the workdir {work} to the sandbox user {uid}: {exc}",
            hint="put the work copies on a local filesystem the worker (root) may chown",
        ) from exc


def _namespace_args(as_root: bool, network: bool = False) -> list[str]:
    """Every namespace but, as root, the user namespace: one mapped to host root defeats
    RLIMIT_NPROC, so root keeps the host user namespace and the launcher drops to an
    unprivileged uid instead (bwrap always sets no_new_privs and mounts binds nosuid).
    `network` keeps the host's network namespace (an install step only)."""
    if not as_root:
        return ["--unshare-all", *(["--share-net"] if network else [])]
    return [
        "--unshare-ipc", "--unshare-pid", *([] if network else ["--unshare-net"]), "--unshare-uts",
        "--unshare-cgroup-try",
        "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
    ]


def _mount_args(work: Path, python_paths: Sequence[Path], tmp_mb: int, network: bool = False) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in _TOP_LEVEL:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in (*_ETC_FILES, *(_NETWORK_ETC if network else ())):
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--dev", "/dev", "--proc", "/proc"]
    args += ["--perms", "1777", "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    args += ["--perms", "0777", "--dir", "/tmp/home"]
    bound = [Path("/usr")]
    made = {Path("/tmp"), Path("/tmp/home"), Path("/etc"), Path("/dev"), Path("/proc")}
    for path in _outermost(python_paths):
        if not _covered(path, bound):
            args += _parent_dirs(path, bound, made) + ["--ro-bind", str(path), str(path)]
            bound.append(path)
    args += _parent_dirs(work, bound, made) + ["--bind", str(work), str(work)]
    return [*args, "--remount-ro", "/"]


def _outermost(paths: Sequence[Path]) -> list[Path]:
    """The given paths (and their real locations), without those inside another one."""
    every = {p.absolute() for p in paths} | {p.resolve() for p in paths}
    kept: list[Path] = []
    for path in sorted(every, key=lambda p: len(p.parts)):
        if not _covered(path, kept):
            kept.append(path)
    return kept


def _covered(path: Path, bound: Sequence[Path]) -> bool:
    return any(path == b or b in path.parents for b in bound)


def _parent_dirs(path: Path, bound: Sequence[Path], made: set[Path]) -> list[str]:
    """Create a mount point's missing parents world-traversable; bwrap would copy the host's
    modes, and e.g. a 0700 /root would hide a Python installed under it from the sandbox user."""
    args: list[str] = []
    for parent in reversed(path.parents[:-1]):
        if parent not in made and not _covered(parent, bound):
            args += ["--perms", "0755", "--dir", str(parent)]
            made.add(parent)
    return args


def _launcher_args(lim: Limits, uid: int | None) -> list[str]:
    mib = 1024 * 1024
    values = (lim.cpu_seconds, lim.memory_mb * mib, lim.processes, lim.file_size_mb * mib)
    return [*(str(v) for v in values), str(-1 if uid is None else uid)]


def _execute(
    argv: tuple[str, ...], command: list[str], env: dict[str, str], lim: Limits, work: Path
) -> SandboxResult:
    status_read, status_write = os.pipe()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                [*command[:1], "--json-status-fd", str(status_write), *command[1:]],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                pass_fds=(status_write,), start_new_session=True,
            )
        except OSError as exc:
            os.close(status_read)
            raise SandboxError(f"could not start bubblewrap: {exc}", hint=INSTALL_HINT) from exc
        finally:
            os.close(status_write)
        timed_out, over_disk = _wait(proc, lim, work)
        duration = time.monotonic() - start
        started = _command_started(status_read)
        stdout, stderr = _read_tail(out), _read_tail(err)
    if not started and not timed_out and not over_disk:
        raise SandboxError(
            f"bubblewrap could not set up the sandbox: {stderr.strip()[-2000:]}",
            hint="check that the workdir and the Python environment exist and are readable",
        )
    return SandboxResult(
        argv=argv, returncode=proc.returncode, stdout=stdout, stderr=stderr,
        timed_out=timed_out, duration_s=duration,
        killed_reason=over_disk or _killed_reason(proc.returncode, timed_out, lim),
    )


def _wait(proc: subprocess.Popen[bytes], lim: Limits, work: Path) -> tuple[bool, str | None]:
    """Wait for bwrap, checking the work copy's size; kill its process group (the pid namespace
    goes with it) at the wall limit or when the work copy outgrows `workdir_mb`."""
    deadline = time.monotonic() + lim.wall_seconds
    cap = lim.workdir_mb * 1024 * 1024
    while True:
        try:
            proc.wait(timeout=max(0.0, min(_DISK_POLL_S, deadline - time.monotonic())))
            over = _tree_bytes(work, cap) > cap
            return False, _over_disk(lim) if over else None
        except subprocess.TimeoutExpired:
            pass
        timed_out = time.monotonic() >= deadline
        over_disk = _tree_bytes(work, cap) > cap
        if timed_out or over_disk:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return timed_out and not over_disk, _over_disk(lim) if over_disk else None


def _over_disk(lim: Limits) -> str:
    return f"the work copy grew over its limit of {lim.workdir_mb} MB (sandbox.workdir_mb)"


def _tree_bytes(root: Path, stop_above: int) -> int:
    """Bytes held by the files under `root` (links not followed); stops counting past `stop_above`."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
        if total > stop_above:
            break
    return total


def _command_started(status_fd: int) -> bool:
    """bwrap writes {"exit-code": N} only when the command it launched ran and exited."""
    os.set_blocking(status_fd, False)
    chunks: list[bytes] = []
    try:
        while chunk := os.read(status_fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    finally:
        os.close(status_fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    return any(_is_exit_record(line) for line in text.splitlines())


def _is_exit_record(line: str) -> bool:
    try:
        record: object = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(record, dict) and "exit-code" in record


def _read_tail(stream: IO[bytes]) -> str:
    size = stream.seek(0, os.SEEK_END)
    skipped = max(0, size - MAX_OUTPUT_BYTES)
    stream.seek(skipped)
    text = stream.read().decode("utf-8", "replace")
    return f"[... {skipped} bytes cut ...]\n{text}" if skipped else text


def _killed_reason(returncode: int, timed_out: bool, lim: Limits) -> str | None:
    if timed_out:
        return f"wall-clock limit of {lim.wall_seconds:g}s reached; the sandbox was killed"
    reasons = {
        128 + signal.SIGXCPU: f"CPU time limit of {lim.cpu_seconds}s exceeded (SIGXCPU)",
        128 + signal.SIGXFSZ: f"file size limit of {lim.file_size_mb} MB exceeded (SIGXFSZ)",
        128 + signal.SIGKILL: "killed by SIGKILL (CPU hard limit or out of memory)",
    }
    return reasons.get(returncode)
