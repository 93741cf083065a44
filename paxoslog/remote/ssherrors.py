"""The errors of the SSH layer (§6.1). `str()` is the spec's message; `reason` is the text after
`<host>: ` in per-host error lists. Re-exported by `paxoslog.remote.ssh`."""

from __future__ import annotations

from paxoslog.errors import RemoteError


class SSHError(RemoteError):
    """A failure reaching or using one host. `reason` is the text after `<host>: ` in per-host
    error lists; `str()` is the spec's message (some messages name the host themselves)."""

    show_host = False

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}" if self.show_host else reason)


class HostKeyUnknown(SSHError):
    show_host = True


class HostKeyChanged(SSHError):
    show_host = True


class AuthenticationFailed(SSHError):
    pass


class SSHTimeout(SSHError):
    pass


class ConnectFailed(SSHError):
    """Refused, unreachable, protocol failure or a connection lost midway."""


class UnsafePath(SSHError):
    """A path the host must not be asked about: outside its root, through a symlink, or not a
    regular file where one is read (issue 7: never follow a symlink under ~/etc or ~/var)."""


class TooLarge(UnsafePath):
    """More data than a bound allows (a file, a download, an object once inflated)."""
