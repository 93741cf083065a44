"""`paxos install [-g G] [host ...]`: this version's node programs onto hosts (issue 9 item 4).

On each host, as its service user and below its home only:

* `~/lib/paxoslog/venv-<build>/`: a venv of the host's own `python3` (>= 3.11), made with
  `--without-pip`; the wheels are installed into it by pip run from its wheel
  (`pip install --no-index --find-links`), so the host needs no package index and no
  python3-venv/ensurepip package, and pip itself is not left on the host.
* `~/bin/paxos-node`, `paxos-css`, `paxos-css-cli`, `paxos-memcache`: two-line wrappers that
  exec the venv's scripts, replaced atomically, so switching builds is one rename per program.
* one guarded line in the login profile bash reads (`~/.bash_profile`, `~/.bash_login`, else
  `~/.profile`, created if none exists) that puts `~/bin` first on PATH, because the admin runs
  the agent as `bash -lc 'paxos-node ...'`; written once, recognised by its marker.
* `~/lib/paxoslog/INSTALLED` (version and build), written last: a host whose INSTALLED names
  this build, whose wrappers point at it, whose profile has the line and whose `paxos-node
  version` (through the login PATH) reports this version and build is `unchanged`: a few SFTP
  reads and one short command, nothing shipped.

The venv of the build installed before is kept (daemons started from it may still import from
it); older ones and the uploaded wheels are removed once the new build runs. Everything read
from a host is bounded and validated; files are written through `sftpfiles` (no symlink
followed). A host local by rule (L) runs this admin's own programs: it is reported `local`.
"""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paxoslog.app import wheels
from paxoslog.app.agentversion import agent_identity
from paxoslog.app.deploy import spec_of
from paxoslog.core.model import Host
from paxoslog.errors import RemoteError
from paxoslog.remote.agentcall import parse_reply
from paxoslog.remote.hostreport import HostReporter
from paxoslog.remote.locality import is_local
from paxoslog.remote.ssh import Connection
from paxoslog.remote.sshpool import SSHSession

PREFIX = "lib/paxoslog"
INSTALLED = f"{PREFIX}/INSTALLED"
PROGRAMS = ("paxos-node", "paxos-css", "paxos-css-cli", "paxos-memcache")
PROFILES = (".bash_profile", ".bash_login", ".profile")  # bash -l reads the first that exists
MARK = "# paxoslog: ~/bin first on PATH (paxos install)"
PROFILE_LINE = ('case ":$PATH:" in *":$HOME/bin:"*) ;; *) PATH="$HOME/bin:$PATH"; export PATH ;; '
                f"esac  {MARK}\n")
MIN_PYTHON = (3, 11)
PROBE_TIMEOUT = 20.0
INSTALL_TIMEOUT = 300.0  # venv + pip on a slow host; the upload has its own per-file bounds
MAX_SMALL = 4096  # INSTALLED, a wrapper
MAX_PROFILE = 1 << 20

BUILD_RE = re.compile(r"[0-9a-f]{12}")
VERSION_RE = re.compile(r"[0-9A-Za-z.+!_-]{1,64}")

# Exit codes of the remote install script, and what each means.
_STEP = {10: "cannot enter ~/lib/paxoslog", 11: "python3 cannot make a venv",
         12: "pip install failed", 13: "the node programs were not installed",
         14: "the installed paxos-node does not run",
         15: "another paxos install is running there"}

_INSTALL_SH = r"""
set -u
b=$1 v=$2 inst=$3 keep=$4
cd "$HOME/lib/paxoslog" || exit 10
exec 9>>.lock && flock -n 9 || exit 15
venv=venv-$b
fail() {  # a failed build leaves nothing behind: no half venv, no staged wheels
    printf '%s\n' "$2" | grep -v '^\s*$' | tail -n 2 | head -c 400 >&2
    rm -rf "$venv" wheels
    exit "$1"
}
rm -rf "$venv"
out=$(python3 -m venv --without-pip "$venv" 2>&1) || fail 11 "$out"
out=$("$venv/bin/python" "wheels/$b/$inst/pip" install -q --no-index --no-cache-dir \
    --disable-pip-version-check --no-warn-script-location --find-links "wheels/$b" \
    "paxoslog==$v" 2>&1) || fail 12 "$out"
for p in paxos-node paxos-css paxos-css-cli paxos-memcache; do
    [ -x "$venv/bin/$p" ] || fail 13 "$p is missing"
done
out=$("$venv/bin/paxos-node" version 2>&1) || fail 14 "$out"
rm -rf wheels
for d in venv-*; do
    case "$d" in "$venv"|"venv-$keep") continue ;; esac
    # a daemon still running from an older build keeps its venv (lazy imports, its own
    # restart) until an install after it stopped
    grep -qasF "$HOME/lib/paxoslog/$d/" /proc/[0-9]*/cmdline && continue
    rm -rf "$d"
done
"""

_PROBE_SH = r"""
if command -v python3 >/dev/null 2>&1; then
    printf 'python %s\n' "$(python3 --version 2>&1 | head -n 1 | head -c 200)"
else
    echo 'python none'
fi
printf 'machine %s\n' "$(uname -m | head -c 64)"
printf 'home %s\n' "$HOME"
"""


class InstallFailed(RemoteError):
    """One host's install failed; the message is the reason shown after `<host>: `."""


def wrapper(home: str, build: str, program: str) -> bytes:
    target = f"{home}/{PREFIX}/venv-{build}/bin/{program}"
    return f'#!/bin/sh\nexec {shlex.quote(target)} "$@"\n'.encode()


_WRAPPER_RE = re.compile(rb"#!/bin/sh\nexec '?(/[^\n']*)/" + PREFIX.encode()
                         + rb"/venv-([0-9a-f]{12})/bin/([a-z-]+)'? \"\$@\"\n")


def parse_installed(raw: bytes) -> tuple[str, str] | None:
    """(version, build) from `~/lib/paxoslog/INSTALLED`, or None when it is not ours."""
    try:
        fields = dict(line.split(" ", 1) for line in raw.decode("ascii").splitlines())
    except (UnicodeDecodeError, ValueError):
        return None
    version, build = fields.get("version", ""), fields.get("build", "")
    if not (VERSION_RE.fullmatch(version) and BUILD_RE.fullmatch(build)):
        return None
    return version, build


def parse_probe(host: str, out: bytes) -> tuple[str, str, str]:
    """(python version, machine, home) from the probe's output, validated; refuses a missing
    or too old python3 with the reason an operator needs."""
    fields: dict[str, str] = {}
    for line in out[:8192].decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        fields.setdefault(key, value)
    py = fields.get("python", "")
    if py == "none":
        raise InstallFailed(f"python3 not found on {host} (the node programs need Python "
                            f">= {MIN_PYTHON[0]}.{MIN_PYTHON[1]})")
    m = re.fullmatch(r"Python (\d{1,3})\.(\d{1,3})(?:\.(\d{1,3}))?\S*", py.strip())
    if not m:
        shown = "".join(c if c.isprintable() else "?" for c in py)[:80]
        raise InstallFailed(f"python3 on {host} does not tell its version: {shown!r}")
    version = (int(m[1]), int(m[2]), int(m[3] or 0))
    text = ".".join(map(str, version))
    if version[:2] < MIN_PYTHON:
        raise InstallFailed(f"python3 on {host} is {text}; the node programs need Python "
                            f">= {MIN_PYTHON[0]}.{MIN_PYTHON[1]}")
    machine = fields.get("machine", "")
    if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", machine):
        raise InstallFailed(f"{host} does not tell its machine type")
    home = fields.get("home", "")
    # the home goes into the wrappers (quoted) and must be the SFTP login directory's path
    if not (home.startswith("/") and len(home) < 1024 and home.isprintable() and "'" not in home
            and "/../" not in home + "/"):
        raise InstallFailed(f"{host} has an unusable home directory")
    return text, machine, home.rstrip("/") or "/"


class Installer:
    """One `paxos install`: the bundle is made (or taken from the cache) once, on first need."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.version = wheels.local_version()
        self.build = wheels.local_build()
        self._lock = threading.Lock()
        self._bundle: wheels.Bundle | None = None

    def bundle(self) -> wheels.Bundle:
        with self._lock:
            if self._bundle is None:
                self._bundle = wheels.bundle(self.cache)
            return self._bundle

    def wheel_dir(self, python: str, machine: str) -> Path:
        b = self.bundle()
        if wheels.fits(b, python, machine):
            return b.directory
        with self._lock:
            return wheels.download_deps(b, python, machine)

    # -- one host

    def installed(self, conn: Connection) -> tuple[str, str] | None:
        try:
            return parse_installed(conn.read_file(INSTALLED, MAX_SMALL))
        except FileNotFoundError:
            return None

    def _profile(self, conn: Connection) -> tuple[str, bytes | None]:
        for name in PROFILES:
            try:
                return name, conn.read_file(name, MAX_PROFILE)
            except FileNotFoundError:
                continue
        return PROFILES[-1], None

    def unchanged(self, conn: Connection) -> bool:
        if self.installed(conn) != (self.version, self.build):
            return False
        for program in PROGRAMS:
            try:
                m = _WRAPPER_RE.fullmatch(conn.read_file(f"bin/{program}", MAX_SMALL))
            except FileNotFoundError:
                return False
            if not m or m[2].decode() != self.build or m[3].decode() != program:
                return False
        _, profile = self._profile(conn)
        if profile is None or MARK.encode() not in profile:
            return False
        # the files say so; the agent found on the login PATH must say so too (a venv broken
        # by a system Python upgrade, or files changed by hand, is installed again)
        r = conn.run(["paxos-node", "--format", "json", "version"], timeout=PROBE_TIMEOUT)
        reply = parse_reply(conn.host, r.code, r.stdout, r.stderr)
        return agent_identity(reply) == (self.version, self.build)

    def install(self, conn: Connection) -> dict[str, Any]:
        host = conn.host
        doc = {"hostname": host, "status": "unchanged", "version": self.version,
               "build": self.build}
        if self.unchanged(conn):
            return doc
        probe = conn.run(["sh", "-c", _PROBE_SH], timeout=PROBE_TIMEOUT)
        python, machine, home = parse_probe(host, probe.stdout)
        # refused before anything is built there: a symlinked ~/bin, profile or ~/lib
        conn.mkdir_p("bin")
        profile_name, profile = self._profile(conn)
        staging = f"{PREFIX}/wheels/{self.build}"
        conn.mkdir_p(staging)
        source = self.wheel_dir(python, machine)
        previous = self.installed(conn)
        b = self.bundle()
        for path in sorted(source.glob("*.whl")):
            conn.write_atomic(f"{staging}/{path.name}", path.read_bytes())
        keep = previous[1] if previous else "none"
        r = conn.run(["sh", "-c", _INSTALL_SH, "sh", self.build, self.version, b.installer, keep],
                     timeout=INSTALL_TIMEOUT)
        if r.code != 0:
            what = _STEP.get(r.code, f"the install script failed (exit {r.code})")
            detail = " ".join(r.stderr[:2000].decode("utf-8", "replace").split())
            detail = "".join(c if c.isprintable() else "?" for c in detail)[:300]
            raise InstallFailed(f"{what}" + (f": {detail}" if detail else ""))
        for program in PROGRAMS:
            conn.write_atomic(f"bin/{program}", wrapper(home, self.build, program), 0o755)
        if profile is None or MARK.encode() not in profile:
            text = profile or b""
            if text and not text.endswith(b"\n"):
                text += b"\n"
            conn.write_atomic(profile_name, text + PROFILE_LINE.encode())
        conn.write_atomic(INSTALLED, f"version {self.version}\nbuild {self.build}\n".encode())
        doc.update(status="installed", python=python)
        return doc


def install(cache: Path, targets: Sequence[Host], session: SSHSession,
            reporter: HostReporter | None = None) -> list[dict[str, Any]]:
    """One document per target, in target order: `installed`, `unchanged`, `local` or `error`
    (with `reason`); one host's failure never stops the others. A `reporter` hears of each
    remote host as it finishes (and of Ctrl-C, which returns at once)."""
    inst = Installer(cache)
    remote = [h for h in targets if not is_local(h)]
    many = session.run_many([spec_of(h) for h in remote], inst.install, reporter=reporter,
                            label=lambda doc: doc["status"])
    out = []
    for h in targets:
        if is_local(h):
            out.append({"hostname": h.hostname, "status": "local", "version": inst.version,
                        "build": inst.build})
        elif h.hostname in many.results:
            out.append(many.results[h.hostname])
        else:
            out.append({"hostname": h.hostname, "status": "error",
                        "reason": many.errors[h.hostname]})
    return out
