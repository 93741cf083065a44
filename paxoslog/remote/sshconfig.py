"""How to reach a host (§6.1): host specs, options, per-host resolution, command results.

Settings only, no connection: `paxoslog.remote.ssh` (connecting) and `paxoslog.remote.sftpfiles`
(file operations) both build on this module, so neither needs the other's internals.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paxoslog.remote.ssherrors import ConnectFailed

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_COMMAND_TIMEOUT = 20.0
DEFAULT_MAX_PARALLEL = 16
DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")


# ---------------------------------------------------------------- configuration


def check_port(value: str | int) -> int:
    """Rule (P) on a port from a host spec (`host:PORT`, ssh config, a log): 1-65535, ASCII
    digits. ValueError carries the spec's message. Never reduced modulo 65536 (issue 13)."""
    text = str(value).strip() if isinstance(value, int) else value
    if not re.fullmatch(r"-?[0-9]+", text):
        raise ValueError("non-numeric value has been specified for the port number")
    if len(text.lstrip("-").lstrip("0")) > 5:
        port = -1 if text.startswith("-") else 1 << 20
    else:
        port = int(text)
    if port > 65535:
        raise ValueError("port number should be 65535 or less")
    if port < 1:
        raise ValueError("port number should be 1 or more")
    return port


@dataclass(frozen=True)
class HostSpec:
    """A host as registered: `user` and `port` None mean "not set" (§6.1 fills them in)."""

    hostname: str
    user: str | None = None
    port: int | None = None
    use_ssh_config: bool = False


@dataclass(frozen=True)
class Endpoint:
    """A HostSpec resolved: what is actually dialled. `host` is the registered name, used in
    messages; `address` may differ with ssh-config `HostName`."""

    host: str
    address: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    # from ssh config (use_ssh_config only): how the TCP stream is made (§6.1, issue 12)
    proxy_command: str | None = None
    proxy_jump: tuple[HostSpec, ...] = ()


def _default_known_hosts() -> Path:
    # PAXOS_KNOWN_HOSTS lets tests and the local simulated cluster keep ~/.ssh untouched.
    env = os.environ.get("PAXOS_KNOWN_HOSTS")
    return Path(env) if env else Path.home() / ".ssh" / "known_hosts"


def _default_identities() -> tuple[str, ...]:
    env = os.environ.get("PAXOS_SSH_IDENTITY")
    if env:
        return tuple(p for p in env.split(os.pathsep) if p)
    return tuple(str(Path.home() / ".ssh" / n) for n in DEFAULT_IDENTITIES)


def tty_password(prompt: str) -> str | None:
    """Ask on the terminal without echo; None when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        return None
    try:
        return getpass.getpass(prompt)
    except (EOFError, OSError):
        return None


def tty_confirm(prompt: str) -> bool:
    """The shell's yes/no question for an unknown host key (§6.1); no terminal means no."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(prompt)
    except (EOFError, OSError):
        return False
    return answer.strip().lower() in ("y", "yes")


@dataclass
class SSHOptions:
    known_hosts: Path = field(default_factory=_default_known_hosts)
    ssh_config: Path = field(default_factory=lambda: Path.home() / ".ssh" / "config")
    identity_files: tuple[str, ...] = field(default_factory=_default_identities)
    use_agent: bool = True
    trust_new_hosts: bool = False
    # Asked (serialized) with the spec's prompt for an unknown key; True trusts and records it.
    confirm_new_host: Callable[[str], bool] | None = None
    ask_password: Callable[[str], str | None] | None = tty_password
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    max_parallel: int = DEFAULT_MAX_PARALLEL


def resolve(spec: HostSpec, options: SSHOptions) -> Endpoint:
    """§6.1: the host's own settings, then (only with use_ssh_config) ~/.ssh/config, then
    defaults. A fresh lookup per host, so no value can leak from a previous host."""
    address, port, user = spec.hostname, spec.port, spec.user
    identities: list[str] = []
    proxy_command: str | None = None
    jumps: tuple[HostSpec, ...] = ()
    if spec.use_ssh_config and options.ssh_config.exists():
        import paramiko  # weight: only hosts that use ssh config pay for it

        try:
            cfg = paramiko.SSHConfig.from_path(str(options.ssh_config)).lookup(spec.hostname)
        except OSError as e:
            raise ConnectFailed(spec.hostname, f"cannot read {options.ssh_config}: "
                                f"{e.strerror or e}") from None
        except (paramiko.SSHException, UnicodeError, ValueError) as e:
            raise ConnectFailed(spec.hostname, f"cannot parse {options.ssh_config}: "
                                f"{(str(e).splitlines() or [''])[0][:200]}") from None
        address = cfg.get("hostname", spec.hostname)
        if port is None and "port" in cfg:
            try:
                port = check_port(cfg["port"])
            except ValueError:
                raise ConnectFailed(spec.hostname, f"invalid port {cfg['port'][:20]!r} in "
                                    f"{options.ssh_config}") from None
        if user is None:
            user = cfg.get("user")
        identities = [os.path.expanduser(p) for p in cfg.get("identityfile", [])]
        # OpenSSH uses the first of the two that appears; paramiko keeps both
        if cfg.get("proxyjump", "none").lower() != "none":
            jumps = parse_jumps(spec.hostname, cfg["proxyjump"], options.ssh_config)
        elif cfg.get("proxycommand", "none").lower() != "none":
            proxy_command = cfg["proxycommand"]
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 1 <= port <= 65535):
        # a port from a hostile log: refused for this host, never wrapped modulo 65536
        raise ConnectFailed(spec.hostname, f"invalid port {str(port)[:20]}")
    return Endpoint(host=spec.hostname, address=address, port=port or 22,
                    user=user or getpass.getuser(),
                    identity_files=tuple(identities) + tuple(options.identity_files),
                    proxy_command=proxy_command, proxy_jump=jumps)


MAX_JUMPS = 8


def parse_jumps(host: str, value: str, path: Path) -> tuple[HostSpec, ...]:
    """ProxyJump `[user@]host[:port][,...]`, in hop order. Each hop is reached with the ssh
    config too (as OpenSSH does), so a hop's own settings apply."""
    hops = []
    for word in value.split(","):
        word = word.strip()
        if word.startswith("ssh://"):
            word = word[len("ssh://"):]
        user, _, rest = word.rpartition("@")
        name, sep, port_text = rest.partition(":")
        if not name or any(c.isspace() or c in "/@" for c in name):
            raise ConnectFailed(host, f"invalid ProxyJump {value[:80]!r} in {path}")
        try:
            port = check_port(port_text) if sep else None
        except ValueError:
            raise ConnectFailed(host, f"invalid ProxyJump {value[:80]!r} in {path}") from None
        hops.append(HostSpec(name, user or None, port, use_ssh_config=True))
    if len(hops) > MAX_JUMPS:
        raise ConnectFailed(host, f"ProxyJump of more than {MAX_JUMPS} hops in {path}")
    return tuple(hops)


@dataclass(frozen=True)
class RunResult:
    code: int
    stdout: bytes
    stderr: bytes
