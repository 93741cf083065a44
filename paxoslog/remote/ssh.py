"""SSH connections to registered hosts (§6.1), on paramiko.

Every host is resolved and authenticated on its own: nothing (user, port, ssh-config values,
passwords) carries over from one host to the next. Host keys are strict: unknown keys are refused
unless the operator trusts them explicitly, changed keys always. Parallel use of many hosts lives
in `paxoslog.remote.sshpool`; remote file helpers (`paxoslog.remote.sftpfiles`) are methods of `Connection`;
the errors live in `paxoslog.remote.ssherrors` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import socket
import threading
import time
from collections.abc import Sequence

from paxoslog.remote.hostkeys import (
    KeyStatus,
    KnownHosts,
    KnownHostsError,
    fingerprint,
    key_type,
    recordable,
)
from paxoslog.remote.paramikoload import paramiko
from paxoslog.remote.sftpfiles import RemoteFiles, remote_path, watchdog
from paxoslog.remote.sshconfig import (
    Endpoint,
    HostSpec,
    RunResult,
    SSHOptions,
    check_port,
    resolve,
    tty_confirm,
    tty_password,
)
from paxoslog.remote.ssherrors import (
    AuthenticationFailed,
    ConnectFailed,
    HostKeyChanged,
    HostKeyUnknown,
    SSHError,
    SSHTimeout,
    TooLarge,
    UnsafePath,
)

# Public names, including the errors and helpers defined in the modules this one builds on.
__all__ = [
    "AuthenticationFailed", "ConnectFailed", "Connection", "Endpoint", "HostKeyChanged",
    "HostKeyUnknown", "HostSpec", "TooLarge", "RunResult", "SSHError", "SSHOptions", "SSHTimeout",
    "UnsafePath", "check_port", "connect", "remote_path", "resolve", "tty_confirm", "tty_password",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- connecting

# Prompts (host key confirmation, password) go to one terminal: one at a time, process-wide.
PROMPT_LOCK = threading.Lock()
# §6.1: a password is asked at most once per host per process.
_password_asked: set[tuple[str, str]] = set()
_password_lock = threading.Lock()

# Transport key-type names for a known_hosts key type (RSA keys sign with SHA-2 variants).
_KEY_ALGOS = {"ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]}


def _prefer_known_key_types(transport: paramiko.Transport, types: list[str]) -> None:
    """Ask the server for a key type we already know, so a host with several keys is not taken
    for an unknown one."""
    sec = transport.get_security_options()
    first = [a for t in types for a in _KEY_ALGOS.get(t, [t]) if a in sec.key_types]
    if first:
        sec.key_types = first + [k for k in sec.key_types if k not in first]


def _prefer_aead(transport: paramiko.Transport) -> None:
    """AES-GCM first: with it paramiko skips its pure-Python MAC comparison, which is most of
    the client CPU a connection costs (matters when deploying to many hosts at once)."""
    sec = transport.get_security_options()
    gcm = [c for c in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") if c in sec.ciphers]
    sec.ciphers = gcm + [c for c in sec.ciphers if c not in gcm]


def _check_host_key(ep: Endpoint, transport: paramiko.Transport, known: KnownHosts,
                    options: SSHOptions) -> None:
    key = transport.get_remote_server_key()
    try:
        status = known.check(ep.address, ep.port, key)
    except KnownHostsError as e:
        raise HostKeyUnknown(ep.host, f"cannot check the host key: {e}") from None
    if status is KeyStatus.KNOWN:
        return
    if status is KeyStatus.REVOKED:
        raise HostKeyChanged(ep.host, f"host key is revoked in known_hosts ({key_type(key)} "
                             f"{fingerprint(key)}); refusing to connect")
    if status is KeyStatus.CHANGED:
        raise HostKeyChanged(ep.host, "host key does not match known_hosts; refusing to connect")
    if not recordable(ep.address):
        # A name with pattern or separator characters would be a pattern once written (OpenSSH
        # refuses to record such names too): trusting it cannot be offered.
        raise HostKeyUnknown(ep.host, f"host key is not known ({key_type(key)} {fingerprint(key)});"
                             " its address cannot be recorded in known_hosts")
    trusted = options.trust_new_hosts
    if not trusted and options.confirm_new_host is not None:
        prompt = (f"The authenticity of host '{ep.host}' can't be established. "
                  f"{key_type(key)} key fingerprint is {fingerprint(key)}. Trust it? [y/N] ")
        with PROMPT_LOCK:
            trusted = options.confirm_new_host(prompt)
    if not trusted:
        raise HostKeyUnknown(ep.host, f"host key is not known ({key_type(key)} {fingerprint(key)});"
                             " add it to known_hosts or use --trust-new-hosts")
    known.add(ep.address, ep.port, key)
    log.info("%s: trusted new %s host key %s", ep.host, key_type(key), fingerprint(key))


def _try_key(transport: paramiko.Transport, user: str, key: paramiko.PKey) -> bool:
    try:
        transport.auth_publickey(user, key)
    except paramiko.AuthenticationException:
        return False
    return transport.is_authenticated()


def _load_key(path: str) -> paramiko.PKey | None:
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        return None
    except (paramiko.SSHException, OSError, ValueError) as e:
        # Encrypted or unreadable keys are skipped: we never prompt for key passphrases.
        log.debug("skipping identity %s: %s", path, e)
        return None


def _authenticate(ep: Endpoint, transport: paramiko.Transport, options: SSHOptions) -> None:
    """Agent keys, identity files, then at most one password prompt (§6.1)."""
    if options.use_agent and os.environ.get("SSH_AUTH_SOCK"):
        agent = paramiko.Agent()
        try:
            for key in agent.get_keys():
                if _try_key(transport, ep.user, key):
                    return
        finally:
            agent.close()
    seen: set[str] = set()
    for path in ep.identity_files:
        if path in seen:
            continue
        seen.add(path)
        key = _load_key(path)
        if key is not None and _try_key(transport, ep.user, key):
            return
    failed = AuthenticationFailed(ep.host, f"authentication failed for {ep.user}@{ep.host}")
    with _password_lock:
        if (ep.user, ep.host) in _password_asked or options.ask_password is None:
            raise failed
        _password_asked.add((ep.user, ep.host))
    with PROMPT_LOCK:
        password = options.ask_password(f"[{ep.user}@{ep.host}] Login password for '{ep.user}': ")
    if password is None:
        raise failed
    try:
        try:
            transport.auth_password(ep.user, password)
        except paramiko.BadAuthenticationType as e:
            if "keyboard-interactive" not in e.allowed_types:
                raise failed from None
            # PAM servers ask for the password through keyboard-interactive.
            transport.auth_interactive(ep.user, lambda _t, _i, prompts: [password] * len(prompts))
    except paramiko.AuthenticationException:
        raise failed from None
    if not transport.is_authenticated():
        raise failed


def _dial(ep: Endpoint, options: SSHOptions, known: KnownHosts,
          via: Connection | None = None) -> object:
    """The byte stream to the host's sshd: a TCP socket, a channel of the previous ProxyJump
    hop (`direct-tcpip`, like `ssh -J`), or a ProxyCommand's pipes."""
    if via is not None:
        try:
            return via._transport.open_channel("direct-tcpip", (ep.address, ep.port),
                                               ("127.0.0.1", 0),
                                               timeout=options.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectFailed(ep.host, f"cannot connect through {via.host}: "
                                f"{str(e) or type(e).__name__}") from None
    if ep.proxy_command:
        try:
            return paramiko.ProxyCommand(ep.proxy_command)
        except (paramiko.SSHException, OSError, ValueError) as e:
            raise ConnectFailed(ep.host, f"cannot run ProxyCommand: {e}") from None
    try:
        return socket.create_connection((ep.address, ep.port), timeout=options.connect_timeout)
    except TimeoutError:
        raise SSHTimeout(ep.host, f"timeout: connect to {ep.address} port {ep.port}") from None
    except OSError as e:
        raise ConnectFailed(ep.host, f"cannot connect: {e.strerror or e}") from None
    except (UnicodeError, ValueError):  # IDNA errors (`a..b`), a NUL in the name
        raise ConnectFailed(ep.host, "cannot connect: illegal host name") from None


def _through_jumps(ep: Endpoint, options: SSHOptions, known: KnownHosts) -> Connection | None:
    """Connect the ProxyJump hops in order, each through the one before; the last one.
    A hop's own ProxyJump/ProxyCommand is not followed (no loops through `Host *`)."""
    via: Connection | None = None
    try:
        for hop in ep.proxy_jump:
            hop_ep = dataclasses.replace(resolve(hop, options), proxy_command=None,
                                         proxy_jump=())
            try:
                via = _handshake(hop_ep, options, known, _dial(hop_ep, options, known, via),
                                 via)
            except SSHError as e:
                raise ConnectFailed(ep.host, f"jump host {hop.hostname}: {e.reason}") from None
    except BaseException:
        if via is not None:
            via.close()
        raise
    return via


def connect(spec: HostSpec, options: SSHOptions | None = None,
            known_hosts: KnownHosts | None = None) -> Connection:
    """Open and authenticate one connection. `known_hosts` is shared by a session's threads."""
    options = options or SSHOptions()
    ep = resolve(spec, options)
    known = known_hosts or KnownHosts(options.known_hosts)
    via = _through_jumps(ep, options, known) if ep.proxy_jump else None
    try:
        return _handshake(ep, options, known, _dial(ep, options, known, via), via)
    except BaseException:
        if via is not None:
            via.close()
        raise


def _handshake(ep: Endpoint, options: SSHOptions, known: KnownHosts, sock: object,
               via: Connection | None) -> Connection:
    start = time.monotonic()
    transport = paramiko.Transport(sock)
    ok = False
    try:
        transport.banner_timeout = transport.handshake_timeout = options.connect_timeout
        transport.auth_timeout = options.connect_timeout
        _prefer_known_key_types(transport, known.known_types(ep.address, ep.port))
        _prefer_aead(transport)
        try:
            transport.start_client(timeout=options.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            if time.monotonic() - start >= options.connect_timeout * 0.9:
                raise SSHTimeout(ep.host, f"timeout: connect to {ep.address} port {ep.port}") from None
            raise ConnectFailed(ep.host, f"cannot connect: {e}") from None
        if not (transport.is_active() and transport.initial_kex_done):
            # start_client returns silently when its timeout expires mid-handshake
            raise SSHTimeout(ep.host, f"timeout: connect to {ep.address} port {ep.port}")
        _check_host_key(ep, transport, known, options)
        try:
            _authenticate(ep, transport, options)
        except paramiko.SSHException as e:
            if isinstance(e, paramiko.AuthenticationException):
                raise AuthenticationFailed(ep.host, f"authentication failed for {ep.user}@{ep.host}") from None
            raise ConnectFailed(ep.host, f"connection lost: {e}") from None
        ok = True
    finally:
        if not ok:
            transport.close()
    conn = Connection(ep, transport, options)
    conn._via = via  # closed with it: the hop carries this connection's stream
    return conn


# ---------------------------------------------------------------- one connection




class Connection(RemoteFiles):
    """One authenticated connection: remote commands and SFTP, each under the command timeout."""

    def __init__(self, endpoint: Endpoint, transport: paramiko.Transport,
                 options: SSHOptions) -> None:
        self.endpoint = endpoint
        self.options = options
        self._transport = transport
        self._sftp: paramiko.SFTPClient | None = None
        self._fsync_supported = True
        self._lock = threading.Lock()
        self._via: Connection | None = None

    @property
    def host(self) -> str:
        return self.endpoint.host

    def is_active(self) -> bool:
        return self._transport.is_active()

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self._transport.close()
        if self._via is not None:
            self._via.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands

    def run(self, args: Sequence[str], *, stdin: bytes = b"",
            timeout: float | None = None) -> RunResult:
        """Run `bash -lc '<args quoted>'` so the login PATH applies; never raises for a non-zero
        exit code, only for timeouts and lost connections."""
        line = shlex.join(args)
        timeout = self.options.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        expired = SSHTimeout(self.host, f"timeout: {line}")
        try:
            chan = self._transport.open_session(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectFailed(self.host, f"connection lost: {e}") from None
        try:
            # paramiko waits for the reply to exec without a timeout: a host that never
            # answers would hang the command, so a watchdog closes the channel at the deadline
            with watchdog(chan, timeout) as fired:
                try:
                    chan.exec_command("bash -lc " + shlex.quote(line))
                except (paramiko.SSHException, EOFError, OSError):
                    if fired.is_set():
                        raise expired from None
                    raise
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            while not (chan.eof_received and not chan.recv_ready()
                       and not chan.recv_stderr_ready()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise expired
                chan.settimeout(min(left, 0.2))
                try:
                    if chan.recv_stderr_ready():
                        err += chan.recv_stderr(65536)
                    else:
                        data = chan.recv(65536)
                        out += data
                        # recv returns b"" at EOF; stderr may still hold data
                        if not data and not chan.recv_stderr_ready():
                            break
                except TimeoutError:
                    continue
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if not chan.status_event.wait(max(deadline - time.monotonic(), 0)):
                raise expired
            code = chan.recv_exit_status()
            if code == -1 and not self._transport.is_active():
                raise ConnectFailed(self.host, "connection lost")
            return RunResult(code, bytes(out), bytes(err))
        except (paramiko.SSHException, EOFError, OSError) as e:
            if isinstance(e, SSHError):
                raise
            raise ConnectFailed(self.host, f"connection lost: {e}") from None
        finally:
            chan.close()
