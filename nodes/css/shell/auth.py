"""Peer authentication (spec 2.3): the cell secret and the tag on every member message.

The secret is 32 random bytes in `<cell>.key` beside the cell file (`~/etc/cell/<cell>.key`),
mode 0600. Whoever creates a cell creates it (`paxos-css-cli gen-key`, or the admin's deploy,
which ships it to the member hosts only). Every datagram and every frame of a member TCP link
is the msgpack body followed by HMAC-SHA256(secret, body) truncated to 16 bytes; anything
without a valid tag is dropped before it is decoded, so nothing a non-member sends can make a
member answer, forward or add anything.
"""

from __future__ import annotations

import hmac
import os
import stat

from ..errors import ConfigError

KEY_BYTES = 32
TAG = 16


class Auth:
    """Signs and checks member messages; `key=None` is the test-only `--no-auth` mode."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key

    @property
    def on(self) -> bool:
        return self.key is not None

    def sign(self, body: bytes) -> bytes:
        if self.key is None:
            return body
        # hmac.digest: the one-shot C path, several times cheaper than hmac.new per message
        return body + hmac.digest(self.key, body, "sha256")[:TAG]

    def verify(self, data: bytes) -> bytes | None:
        """The body when the tag is valid (always without a key), else None."""
        if self.key is None:
            return data
        if len(data) <= TAG:
            return None
        body, tag = data[:-TAG], data[-TAG:]
        good = hmac.digest(self.key, body, "sha256")[:TAG]
        return body if hmac.compare_digest(tag, good) else None


def key_path(config_file: str, cell: str) -> str:
    """`<cell>.key` in the directory of the cell file in use."""
    return os.path.join(os.path.dirname(os.path.abspath(config_file)), f"{cell}.key")


def load_key(path: str) -> bytes:
    """Read the cell secret; ConfigError naming the file if it is missing, unreadable, of the
    wrong size or readable by others. 32 raw bytes, or 64 hex digits and a newline."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the cell secret: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: the cell secret is not a regular file")
        if st.st_mode & 0o077:
            raise ConfigError(f"{path}: the cell secret must not be accessible to group or "
                              f"others (mode {stat.S_IMODE(st.st_mode):04o}, want 0600)")
        data = os.read(fd, 256)
    finally:
        os.close(fd)
    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise ConfigError(f"{path}: the cell secret must be {KEY_BYTES} bytes (or "
                      f"{2 * KEY_BYTES} hex digits), found {len(data)} bytes")


def generate_key(path: str) -> None:
    """Create a fresh secret at `path` (mode 0600); refuses to overwrite an existing one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path}: a cell secret already exists; not overwritten") from None
    try:
        os.write(fd, os.urandom(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
