"""known_hosts lines and host patterns, read exactly as OpenSSH 9.2 reads them (pure: no files).

The reference is OpenSSH's own code: `hostkeys_foreach_file`, `check_markers`,
`match_maybe_hashed` and `check_hostkeys_by_key_or_type` in hostfile.c, `match_pattern` /
`match_pattern_list` / `match_hostname` in match.c, `sshkey_read` in sshkey.c. Tests compare the
lines selected here with `ssh-keygen -lF` and the verdicts with a real `ssh`.

Text is handled as latin-1 so that one character is one byte, as in C: no byte sequence can fail
to decode, and ASCII-only lowercasing (OpenSSH's `tolower` in the C locale) cannot touch others.

Deliberate differences, all in the refusing direction:
* A key listed in any `@revoked` line is revoked for every host, whatever the line's host
  patterns (OpenSSH only honours `@revoked` lines whose patterns match, and not at all for the
  port-less fallback of a non-22 port).
* A key is "valid" when its type name is one OpenSSH knows and its base64 blob decodes and names
  the same type; OpenSSH additionally parses the key material. A line OpenSSH would skip as
  corrupt can therefore count here as a different key for its hosts (refused as changed).
* `@cert-authority` lines are ignored: host certificates are not supported, and the client never
  asks for one, so (as in OpenSSH for a plain key) they never vouch for or against a host key.
* A host field that ends the line is a truncated line (skipped), as in OpenSSH after 9.2; 9.2
  itself reads past the end of the line there.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass


class KeyStatus(enum.Enum):
    KNOWN = "known"
    UNKNOWN = "unknown"
    CHANGED = "changed"
    REVOKED = "revoked"


class Marker(enum.Enum):
    NONE = ""
    REVOKED = "@revoked"
    CA = "@cert-authority"


@dataclass(frozen=True, slots=True)
class Entry:
    """One usable known_hosts line: `hosts` is its pattern list or hashed name, as written."""

    line: int
    marker: Marker
    hosts: str
    keytype: str
    blob: bytes


# Key type names OpenSSH 9.2 accepts at the start of a key (sshkey.c keyimpls), each with the
# type name its wire blob must carry. rsa-sha2-* are signature names of plain RSA keys.
_CERT = "-cert-v01@openssh.com"
_PLAIN_TYPES = {
    "ssh-ed25519": "ssh-ed25519",
    "sk-ssh-ed25519@openssh.com": "sk-ssh-ed25519@openssh.com",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa-sha2-nistp256@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss": "ssh-dss",
    "ssh-rsa": "ssh-rsa",
    "rsa-sha2-256": "ssh-rsa",
    "rsa-sha2-512": "ssh-rsa",
    "ssh-xmss@openssh.com": "ssh-xmss@openssh.com",
}
_CERT_TYPES = {
    name.removesuffix("@openssh.com") + _CERT: blob.removesuffix("@openssh.com") + _CERT
    for name, blob in _PLAIN_TYPES.items() if not name.startswith("webauthn-")
}
_BLOB_TYPE = {**_PLAIN_TYPES, **_CERT_TYPES}
PLAIN_KEY_TYPES = frozenset(_PLAIN_TYPES.values())

# hostfile.c: HASH_MAGIC "|1|", a 20-byte salt (SHA-1 HMAC key), base64 decoded salts <= 1024.
_HASH_MAGIC = "|1|"
_SALT_LEN = 20
# match.c: a sub-pattern of 1023 characters or more makes the whole list "no match".
_MAX_SUBPATTERN = 1023
# The characters OpenSSH refuses to write as a host name (sshconnect.c check_host_key), plus
# what would turn a name into several patterns or fields here: commas, negation, blanks, controls.
_UNRECORDABLE = set("@?*#[]|'\"\\,!") | {chr(c) for c in range(33)} | {"\x7f"}

_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(s: str) -> str:
    """C-locale tolower: only A-Z change."""
    return s.translate(_LOWER)


def as_bytes_text(name: str) -> str:
    """A host name as the byte string OpenSSH compares (UTF-8), one character per byte."""
    return name.encode("utf-8", "surrogateescape").decode("latin-1")


# ---------------------------------------------------------------- match.c


def match_pattern(s: str, pattern: str) -> bool:
    """`*` any run, `?` any one character, everything else literal (match.c match_pattern).

    Iterative with one back-tracking point instead of OpenSSH's recursion: the same language,
    but at worst len(s) * len(pattern) steps, so a hostile `*?*?*?...` pattern cannot take
    exponential time."""
    si = pi = 0
    star_pi, star_si = -1, 0
    n, m = len(s), len(pattern)
    while si < n:
        if pi < m and pattern[pi] == "*":
            star_pi, star_si = pi, si
            pi += 1
        elif pi < m and (pattern[pi] == "?" or pattern[pi] == s[si]):
            si += 1
            pi += 1
        elif star_pi >= 0:
            star_si += 1
            si, pi = star_si, star_pi + 1
        else:
            return False
    while pi < m and pattern[pi] == "*":
        pi += 1
    return pi == m


def match_pattern_list(s: str, patterns: str, dolower: bool = True) -> int:
    """1 if a sub-pattern matches, -1 if a `!negated` one does (that wins: the whole list does
    not match), 0 otherwise. Sub-patterns are lowercased when `dolower` (match.c)."""
    got_positive = 0
    i, n = 0, len(patterns)
    while i < n:
        negated = patterns[i] == "!"
        if negated:
            i += 1
        end = patterns.find(",", i)
        if end < 0:
            end = n
        sub = patterns[i:end]
        if len(sub) >= _MAX_SUBPATTERN:
            return 0
        i = end + 1 if end < n else n
        if match_pattern(s, ascii_lower(sub) if dolower else sub):
            if negated:
                return -1
            got_positive = 1
    return got_positive


def match_hostname(host: str, patterns: str) -> int:
    """match.c match_hostname: the host is lowercased, then matched against the list."""
    return match_pattern_list(ascii_lower(host), patterns, True)


def _b64decode(text: str) -> bytes | None:
    # OpenSSH's b64_pton skips white space; space and tab never reach here (they end fields).
    cleaned = "".join(c for c in text if c not in "\r\n\v\f")
    try:
        return base64.b64decode(cleaned.encode("latin-1"), validate=True)
    except (binascii.Error, ValueError):
        return None


def hash_host(host: str, salt: bytes) -> str:
    """`|1|<salt>|<HMAC-SHA1(salt, host)>`, as `ssh-keygen -H` writes it (hostfile.c host_hash)."""
    digest = hmac.new(salt, host.encode("latin-1"), hashlib.sha1).digest()
    return (f"{_HASH_MAGIC}{base64.b64encode(salt).decode()}|"
            f"{base64.b64encode(digest).decode()}")


def _hashed_matches(host: str, field: str) -> bool:
    # extract_salt + host_hash + a string comparison: anything but the canonical encoding of
    # this host's HMAC is no match (a malformed hash is a bad line in OpenSSH; same effect).
    if not field.startswith(_HASH_MAGIC):
        return False
    rest = field[len(_HASH_MAGIC):]
    bar = rest.find("|")
    if bar <= 0 or bar > 1024:
        return False
    salt = _b64decode(rest[:bar])
    if salt is None or len(salt) != _SALT_LEN:
        return False
    return hmac.compare_digest(hash_host(host, salt), field)


def host_field_matches(name: str, field: str) -> bool:
    """Does a line's host field (pattern list or `|1|` hash) name `name`? (match_maybe_hashed;
    `name` is already lowercased and in byte-text form.)"""
    if field.startswith("|"):
        return _hashed_matches(name, field)
    return match_hostname(name, field) == 1


# ---------------------------------------------------------------- hostfile.c


def _check_marker(rest: str) -> tuple[Marker, str] | None:
    """hostfile.c check_markers, quirks included: the marker ends at the first space of the line
    (a tab only when there is no space at all); a second marker is an error."""
    marker = Marker.NONE
    while rest.startswith("@"):
        if marker is not Marker.NONE:
            return None
        sp = rest.find(" ")
        if sp < 0:
            sp = rest.find("\t")
        if sp < 0 or sp <= 1 or sp >= 32:
            return None
        word = rest[:sp]
        if word == Marker.CA.value:
            marker = Marker.CA
        elif word == Marker.REVOKED.value:
            marker = Marker.REVOKED
        else:
            return None
        rest = rest[sp:].lstrip(" \t")
    return marker, rest


def _split_field(s: str) -> tuple[str, str]:
    """The text up to the first space or tab (strcspn(s, " \\t")) and what follows it."""
    for i, c in enumerate(s):
        if c in " \t":
            return s[:i], s[i:]
    return s, ""


def blob_type(blob: bytes) -> str | None:
    """The key type name a wire-format key blob starts with (None if it has none)."""
    if len(blob) < 4:
        return None
    n = int.from_bytes(blob[:4], "big")
    if n > len(blob) - 4:
        return None
    return blob[4:4 + n].decode("latin-1")


def parse_line(text: str, number: int) -> Entry | str | None:
    """One line (without its newline): an Entry, None for a blank line or comment, or the reason
    it is skipped. Mirrors hostkeys_foreach_file with HKF_WANT_PARSE_KEY."""
    # C strings end at the first NUL. OpenSSH 9.2 steps over the character that ends the host
    # field, NUL or not, and reads on to the next NUL; that is followed here (it makes the line
    # count, the refusing direction). A host field ending the line is truncated, as in later
    # OpenSSH (9.2 reads whatever its buffer holds beyond).
    head, nul, after = text.partition("\0")
    rest = head.lstrip(" \t")
    if not rest or rest.startswith("#"):
        return None
    checked = _check_marker(rest)
    if checked is None:
        return "invalid marker"
    marker, rest = checked
    hosts, rest = _split_field(rest)
    if not rest and nul:
        rest = " " + after.partition("\0")[0]
    if not rest:
        return "truncated line"
    rest = rest.lstrip(" \t")
    if not rest or rest.startswith("#"):
        return "truncated before key type"
    keytype, rest = _split_field(rest)
    if not rest:
        return "no key after the key type"
    expected = _BLOB_TYPE.get(keytype)
    if expected is None:
        return "unknown key type"
    rest = rest.lstrip(" \t")
    if not rest:
        return "no key after the key type"
    encoded, _comment = _split_field(rest)
    blob = _b64decode(encoded)
    if blob is None:
        return "key is not base64"
    if blob_type(blob) != expected:
        return "key does not match its type"
    return Entry(number, marker, hosts, keytype, blob)


def parse(data: bytes) -> tuple[list[Entry], list[tuple[int, str]]]:
    """Every usable line of a known_hosts file, and (line number, reason) for skipped ones.
    Lines end at LF only, as with getline(3); a CR stays part of the line."""
    entries: list[Entry] = []
    skipped: list[tuple[int, str]] = []
    for number, raw in enumerate(data.decode("latin-1").split("\n"), 1):
        result = parse_line(raw, number)
        if isinstance(result, Entry):
            entries.append(result)
        elif result is not None:
            skipped.append((number, result))
    return entries, skipped


def matching(entries: Iterable[Entry], name: str) -> list[Entry]:
    """The lines naming `name` (a host name or `[host]:port`), in file order: what
    `ssh-keygen -lF name` prints."""
    key = ascii_lower(as_bytes_text(name))
    return [e for e in entries if host_field_matches(key, e.hosts)]


def _same_public_key(entry: Entry, blob: bytes) -> bool:
    """sshkey_equal_public: the same key, or a certificate carrying it. A certificate blob is
    type, nonce, then the plain key's fields in the plain key's order."""
    if entry.blob == blob:
        return True
    cert_type = blob_type(entry.blob)
    plain_type = blob_type(blob)
    if (cert_type is None or plain_type is None
            or cert_type != plain_type.removesuffix("@openssh.com") + _CERT):
        return False
    after_type = 4 + len(cert_type.encode("latin-1"))
    if len(entry.blob) < after_type + 4:
        return False
    nonce_len = int.from_bytes(entry.blob[after_type:after_type + 4], "big")
    fields = entry.blob[after_type + 4 + nonce_len:]
    return fields.startswith(blob[4 + len(plain_type.encode("latin-1")):])


def is_revoked(entries: Iterable[Entry], blob: bytes) -> bool:
    """Listed by any `@revoked` line, whatever its host patterns (see the module docstring)."""
    return any(e.marker is Marker.REVOKED and _same_public_key(e, blob) for e in entries)


def key_status(matched: Iterable[Entry], blob: bytes) -> KeyStatus:
    """check_key_in_hostkeys for a plain key over the lines that name the host: KNOWN if one
    holds this key; CHANGED if any other key is recorded (of any type: OpenSSH refuses a host
    known with an RSA key that now shows only an Ed25519 one); UNKNOWN if nothing is recorded.
    Revocation is checked separately, over the whole file."""
    status = KeyStatus.UNKNOWN
    for e in matched:
        if e.marker is not Marker.NONE:
            continue
        if e.blob == blob:
            return KeyStatus.KNOWN
        status = KeyStatus.CHANGED
    return status


def recordable(host: str) -> bool:
    """May `host` be written to known_hosts as a literal name? (Not a pattern, no field or list
    separators: OpenSSH never records such names either.)"""
    return bool(host) and not any(c in _UNRECORDABLE for c in host)
