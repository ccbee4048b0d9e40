"""The bubblewrap command line of the strict sandbox.

What a sandboxed command sees is built up from an empty tmpfs root (then remounted read-only):

- ``/usr`` (and ``/bin``, ``/lib``, ``/lib64``, ``/sbin`` as the host has them), read-only;
- a short list of ``/etc`` entries programs need to start (loader cache, alternatives,
  certificates, time zone, ...) plus a generated ``passwd``/``group``/``hosts`` that name only
  root and the sandbox user; never ``/etc/shadow``, ``/etc/ssl/private`` or the rest;
- the Python interpreter (the worker's venv and its base install, never their sibling
  folders) and the parts of the toolchains a build reads (rustup, cargo's binaries and
  registry, Go's root and module cache), read-only; never a folder named by the command,
  which the task's payload chooses;
- the project copy, the only writable host folder, and a private size-capped ``/tmp``;
- bwrap's minimal ``/dev`` and a ``/proc`` of its own PID namespace.

Home folders, ``/root``, ``/work``, ``/var``, the swarm's state and cache folders are simply
not there. New PID, IPC, UTS, network (loopback only) and cgroup namespaces;
``--die-with-parent`` and ``--new-session``.

When the worker runs as root, bubblewrap (which then keeps every capability for itself)
ends with ``setpriv``: the command runs under a uid/gid of its own (random, unused by the
host), with no supplementary groups, an empty capability bounding set and ``no_new_privs``,
so set-uid programs do not raise it either. ``RLIMIT_NPROC`` then caps the processes of the
run as a whole (the kernel does not apply it to uid 0). As an ordinary user, bubblewrap
already uses a user namespace and drops every capability; nested user namespaces are
refused (``--disable-userns``). Either way the command runs under the seccomp filter of
:mod:`.seccomp` (no new user namespaces, keyring, ``TIOCSTI`` or foreign ABIs).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

#: /etc entries bound read-only (those that exist). Nothing with secrets in it.
ETC_ENTRIES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "pki/tls/certs",
    "pki/ca-trust",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "protocols",
    "services",
    "mime.types",
    "os-release",
    "debian_version",
    "gitconfig",
)
#: Globbed /etc entries (Debian's per-version python and java configuration).
ETC_GLOBS = ("python3*", "java-*")
#: Top-level host folders bound read-only (or recreated as the same symlinks).
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: First uid/gid of the range a root worker gives its runs (one random uid per run).
UID_BASE = 1_600_000_000
UID_SPAN = 100_000_000
TMP_SIZE_BYTES = 512 * 1024 * 1024
#: What of ``CARGO_HOME`` a build needs: the toolchain proxies and the offline registry.
CARGO_PARTS = ("bin", "registry", "git")
#: What of ``GOPATH`` a build needs: installed tools and the module cache.
GO_PARTS = ("bin", "pkg/mod")


def as_root() -> bool:
    return os.geteuid() == 0


def sandbox_uid() -> int:
    """A uid for one run: the worker's own when not root, else a fresh unused one."""
    if not as_root():
        return os.getuid()
    return UID_BASE + secrets.randbelow(UID_SPAN)


def reap(uid: int, timeout_s: float = 5.0) -> int:
    """Kill every live process of a run's own ``uid`` and wait until none is left.

    The kernel kills what is left in the run's PID namespace when its first process exits, but
    not before that exit is reported: a daemon the project started can still be on its way out
    (or, under load, running) when the run's result is. Only for a root worker's fresh uid,
    which nothing else uses. Zombies are skipped (they run nothing; their reaper frees them).
    Returns how many processes were still alive when the run ended.
    """
    if uid == os.getuid() or uid < UID_BASE:
        return 0
    deadline = time.monotonic() + timeout_s
    first = -1
    while True:
        alive = _live_processes(uid)
        if first < 0:
            first = len(alive)
        if not alive or time.monotonic() > deadline:
            return first
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _live_processes(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
            if stat[stat.rindex(")") + 2] not in "ZX":  # not a zombie, not dead
                found.append(int(entry))
    return found


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


#: Top-level folders never bound whole (a venv at ``/venv`` or ``/opt/venv`` is fine).
WIDE_TOP = frozenset(
    {"/", "/etc", "/var", "/run", "/tmp", "/proc", "/sys", "/dev", "/boot", "/root", "/home"}
    | {"/srv", "/mnt", "/media", "/opt", "/work", "/usr", "/snap", "/nix"}
)


def _too_wide(path: Path) -> bool:
    """Folders never bound whole: /, the system's top-level folders, homes and their parents."""
    homes = {Path.home().resolve(), Path("/root"), Path("/home")}
    if str(path) in WIDE_TOP:
        return True
    return any(path == home or path in home.parents for home in homes)


def interpreter_dirs() -> list[Path]:
    """The worker's Python: its venv and its base installation, as named and resolved.

    Both: commands name the interpreter by ``sys.executable``, which may go through a
    symbolic link (a worktree's ``.venv`` pointing at another checkout's).
    """
    raw = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.dirname(sys.executable)),
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
    }
    named = {Path(os.path.abspath(p)) for p in raw if p}
    return sorted(named | {p.resolve() for p in named})


def toolchain_dirs(env: Mapping[str, str]) -> list[Path]:
    """rustup/cargo and Go folders named by the worker's environment (never the payload's).

    Only the parts a build reads: ``CARGO_HOME`` holds the user's registry tokens
    (``credentials.toml``) and ``GOPATH`` their other projects' sources.
    """
    found: list[Path] = []
    for name in ("RUSTUP_HOME", "GOROOT", "GOMODCACHE"):
        if env.get(name):
            found.append(Path(env[name]))
    parts = {"CARGO_HOME": CARGO_PARTS, "GOPATH": GO_PARTS}
    gopath = env.get("GOPATH") or (str(Path.home() / "go") if (Path.home() / "go").is_dir() else "")
    for name, value in (("CARGO_HOME", env.get("CARGO_HOME", "")), ("GOPATH", gopath)):
        for folder in value.split(os.pathsep):
            if folder:
                found.extend(Path(folder, sub) for sub in parts[name])
    return [path for path in found if path.is_dir()]


@dataclasses.dataclass(kw_only=True)
class Jail:
    """Everything one bwrap invocation binds, and the uid the command runs under."""

    workdir: Path
    etc: Path  # the /etc the command sees (see :func:`etc_template`)
    passwd: Path  # this run's /etc/passwd and /etc/group, naming its uid
    group: Path
    uid: int
    binds: list[tuple[Path, Path]]  # (host folder, where the command sees it)
    path_variable: str

    def argv(self, command: Sequence[str], *, seccomp_fd: int | None = None) -> list[str]:
        args = [
            "bwrap",
            "--die-with-parent",
            "--new-session",
            "--unshare-net",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
        ]
        if not as_root():
            args += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        args += ["--tmpfs", "/"]
        made: set[Path] = {Path("/")}
        mounts: set[Path] = set()
        for name in SYSTEM_DIRS:
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), str(host)]
                mounts.add(host)
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
                mounts.add(host)
        args += ["--ro-bind", str(self.etc), "/etc"]
        args += ["--ro-bind", str(self.passwd), "/etc/passwd"]
        args += ["--ro-bind", str(self.group), "/etc/group"]
        mounts.add(Path("/etc"))
        args += ["--dev", "/dev", "--proc", "/proc"]
        args += ["--size", str(TMP_SIZE_BYTES), "--perms", "1777", "--tmpfs", "/tmp"]
        made.add(Path("/tmp"))
        for source, dest in self.binds:
            args += _mkdirs(dest.parent, made, mounts)
            args += ["--ro-bind", str(source), str(dest)]
            mounts.add(dest)
        args += _mkdirs(self.workdir.parent, made, mounts)
        args += ["--bind", str(self.workdir), str(self.workdir)]
        args += ["--remount-ro", "/", "--chdir", str(self.workdir)]
        args += ["--setenv", "PATH", self.path_variable]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        args += ["--"]
        if as_root():
            args += [
                "setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        return [*args, *command]

    def release(self) -> None:
        """Remove this run's passwd and group files."""
        for path in (self.passwd, self.group):
            with contextlib.suppress(OSError):
                path.unlink()


def _etc_entries() -> list[Path]:
    etc = Path("/etc")
    found = [etc / name for name in ETC_ENTRIES if os.path.lexists(etc / name)]
    for pattern in ETC_GLOBS:
        found.extend(sorted(etc.glob(pattern)))
    return found


_templates: dict[tuple[tuple[str, int], ...], Path] = {}


def etc_template() -> Path:
    """A copy of the /etc entries a jail shows, made once per process (and again when they
    change): one read-only bind instead of one per entry. Links are copied as links.

    Its folder also holds each run's passwd and group files; it goes at exit.
    """
    entries = _etc_entries()
    signature = tuple((str(p), p.lstat().st_mtime_ns) for p in entries)
    found = _templates.get(signature)
    if found is not None and found.is_dir():
        return found
    _remove_stale_templates()
    base = Path(tempfile.mkdtemp(prefix=f"swarm-jail-{os.getpid()}-"))
    atexit.register(shutil.rmtree, base, True)
    etc = base / "etc"
    for entry in entries:
        target = etc / entry.relative_to("/etc")
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        else:
            shutil.copy2(entry, target)
    (etc / "hosts").write_text("127.0.0.1 localhost sandbox\n::1 localhost\n")
    for name in ("passwd", "group"):  # mount points for each run's own
        (etc / name).write_text("")
    for folder in (base, etc, *(p for p in etc.rglob("*") if p.is_dir() and not p.is_symlink())):
        folder.chmod(0o755)
    for name in ("hosts", "passwd", "group"):
        (etc / name).chmod(0o644)
    _templates[signature] = etc
    return etc


def _remove_stale_templates() -> None:
    """Templates of workers that ended without running their exit handlers (killed)."""
    for folder in Path(tempfile.gettempdir()).glob("swarm-jail-*-*"):
        pid = folder.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _mkdirs(path: Path, made: set[Path], mounts: set[Path]) -> list[str]:
    """``--dir`` for ``path`` and its missing parents, world-readable (not the umask's).

    ``made`` holds the folders made in the jail's tmpfs so far, ``mounts`` the read-only
    mount points: below those the folders exist already (or cannot be made).
    """
    missing: list[Path] = []
    while path not in made and path not in mounts:
        if any(m in path.parents for m in mounts):
            return []
        missing.append(path)
        path = path.parent
    args: list[str] = []
    for folder in reversed(missing):
        args += ["--perms", "0755", "--dir", str(folder)]
        made.add(folder)
    return args


def prepare(workdir: Path, env: Mapping[str, str]) -> Jail:
    """The jail of one run: the binds its command needs, its uid and its small /etc files.

    Owns the project copy to the run's uid (a root worker), so it is writable there and
    nowhere else.
    """
    uid = sandbox_uid()
    binds = _binds(workdir, env)
    visible = [*(Path("/") / name for name in SYSTEM_DIRS), *(dest for _, dest in binds)]
    entries = [str(Path(os.path.abspath(sys.prefix)) / "bin")]
    entries += [str(dest / "bin") for _, dest in binds if (dest / "bin").is_dir()]
    for entry in env.get("PATH", "").split(os.pathsep):
        if entry and os.path.isabs(entry) and _under(Path(entry).resolve(), visible):
            entries.append(entry)
    entries += ["/usr/local/bin", "/usr/bin", "/bin"]
    path_variable = os.pathsep.join(dict.fromkeys(entries))
    etc = etc_template()
    passwd = etc.parent / f"passwd-{uid}-{secrets.token_hex(4)}"
    group = passwd.with_name(passwd.name.replace("passwd", "group", 1))
    passwd.write_text(
        "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
        f"sandbox:x:{uid}:{uid}:swarm sandbox:{workdir}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    group.write_text(f"root:x:0:\nsandbox:x:{uid}:\nnogroup:x:65534:\n")
    passwd.chmod(0o644)
    group.chmod(0o644)
    if as_root():
        chown_tree(workdir, uid)
    return Jail(
        workdir=workdir,
        etc=etc,
        passwd=passwd,
        group=group,
        uid=uid,
        binds=binds,
        path_variable=path_variable,
    )


def _binds(workdir: Path, env: Mapping[str, str]) -> list[tuple[Path, Path]]:
    # Never a folder derived from the command: the payload chooses it (``~/.ssh/x``).
    system = [Path("/") / name for name in SYSTEM_DIRS]
    wanted = [*interpreter_dirs(), *toolchain_dirs(env)]
    dests: list[Path] = []
    binds: list[tuple[Path, Path]] = []
    for dest in sorted(set(wanted), key=lambda p: (len(p.parts), str(p))):
        source = dest.resolve()
        if not source.is_dir() or _too_wide(source) or _too_wide(dest):
            continue
        if _under(dest, [*system, *dests]):
            continue
        if _under(workdir, [dest, source]) or _under(source, [workdir]):
            continue
        dests.append(dest)
        binds.append((source, dest))
    return binds


def chown_tree(root: Path, uid: int) -> None:
    """``chown -hR uid:uid root`` (links themselves, not what they point at)."""
    os.lchown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), uid, uid)
