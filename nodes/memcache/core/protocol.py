"""memcached text protocol, parsed the way memcached 1.6 parses it.

`Parser` is fed raw bytes and yields, in order, either a `Command` to run, a `Reply` (an error
line memcached would write without touching data) or `Close`. Token rules, number parsing
(C `strtol`/`strtoul` as memcached's `safe_strto*` use them), token counts and every error line
were checked against a real memcached 1.6; `tests/memcache/test_fuzz.py` keeps them identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KEY_MAX = 250
LINE_MAX = 2048  # a line without '\n' beyond this closes the connection (unless get/gets)
GET_LINE_MAX = 64 * 1024  # multi-key get lines (pymemcache sends get_many on one line)
INT_MAX = (1 << 31) - 1
_WS = b" \t\n\v\f\r"

BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
BAD_DELTA = b"CLIENT_ERROR invalid numeric delta argument\r\n"
BAD_EXPTIME = b"CLIENT_ERROR invalid exptime argument\r\n"
BAD_DELETE = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
ERROR = b"ERROR\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
LINE_TOO_LONG = b"CLIENT_ERROR line too long\r\n"

STORAGE = ("set", "add", "replace", "append", "prepend", "cas")
# command -> allowed token counts, counting memcached's empty terminal token
_NTOKENS = {
    "set": (6, 7), "add": (6, 7), "replace": (6, 7), "append": (6, 7), "prepend": (6, 7),
    "cas": (7, 8), "incr": (4, 5), "decr": (4, 5), "touch": (4, 5), "delete": (3, 4, 5),
    "flush_all": (2, 3, 4), "verbosity": (3, 4),
}


@dataclass
class Command:
    name: str
    keys: list[bytes] = field(default_factory=list)
    flags: int = 0
    exptime: int = 0
    data: bytes = b""
    cas: int = 0
    delta: int = 0
    noreply: bool = False
    args: list[bytes] = field(default_factory=list)  # stats arguments
    delay: int = 0  # flush_all
    line: bytes = b""  # the raw command line (stats pass-through)
    too_large: bool = False  # storage data consumed but larger than item_size_max

    @property
    def key(self) -> bytes:
        return self.keys[0]


@dataclass
class Reply:
    data: bytes
    suppressed: bool = False  # an error that noreply swallowed (counted and logged)


@dataclass
class Close:
    reason: str
    data: bytes = b""


Item = Command | Reply | Close


def _cstr(tok: bytes) -> bytes:
    # memcached compares tokens as C strings: a NUL ends them
    i = tok.find(b"\0")
    return tok if i < 0 else tok[:i]


def _scan(tok: bytes) -> tuple[bool, int] | None:
    """(negative, magnitude) as strtol/strtoul scan `tok`, or None if memcached refuses it."""
    s = _cstr(tok)
    i = 0
    while i < len(s) and s[i] in _WS:
        i += 1
    neg = False
    if i < len(s) and s[i] in b"+-":
        neg = s[i] == 0x2D
        i += 1
    j = i
    while j < len(s) and 0x30 <= s[j] <= 0x39:
        j += 1
    if j == i or (j < len(s) and s[j] not in _WS):
        return None
    return neg, int(s[i:j])


def strtol32(tok: bytes) -> int | None:
    """memcached's safe_strtol: parsed as a C long (ERANGE refused), then truncated to int32
    by the assignment (so 4294967296 reads as 0, as memcached reads it)."""
    r = _scan(tok)
    if r is None:
        return None
    v = -r[1] if r[0] else r[1]
    if v > (1 << 63) - 1 or v < -(1 << 63):
        return None
    return ((v + (1 << 31)) % (1 << 32)) - (1 << 31)


def strtoul(tok: bytes, bits: int = 64) -> int | None:
    """memcached's safe_strtoul/safe_strtoull: a '-' is refused only if it makes the value
    negative as a signed long; flags (32 bits) are then truncated like the C assignment."""
    r = _scan(tok)
    if r is None or r[1] > (1 << 64) - 1:
        return None
    v = (-r[1]) % (1 << 64) if r[0] else r[1]
    if v >= 1 << 63 and r[0]:
        return None
    return v % (1 << bits)


class Parser:
    """Incremental parser of one client connection."""

    def __init__(self, item_size_max: int = 1 << 20) -> None:
        self.buf = bytearray()
        self.item_size_max = item_size_max
        self.pending: Command | None = None  # storage command waiting for its data block
        self.need = 0
        self.swallow = 0
        self.first = True

    def feed(self, data: bytes) -> None:
        self.buf += data

    def next(self) -> Item | None:
        """The next complete item, or None when more bytes are needed."""
        while True:
            if self.swallow:
                n = min(self.swallow, len(self.buf))
                del self.buf[:n]
                self.swallow -= n
                if self.swallow:
                    return None
            if self.pending is not None:
                return self._data()
            if not self.buf:
                return None
            if self.first:
                self.first = False
                if self.buf[0] == 0x80:
                    return Close("binary protocol is not supported")
            item = self._line()
            if item is not _AGAIN:
                return item  # type: ignore[return-value]

    def _data(self) -> Item | None:
        cmd = self.pending
        assert cmd is not None
        if len(self.buf) < self.need:
            return None
        chunk = bytes(self.buf[:self.need])
        del self.buf[:self.need]
        self.pending = None
        if chunk[-2:] != b"\r\n":
            return Reply(b"" if cmd.noreply else BAD_CHUNK, cmd.noreply)
        cmd.data = chunk[:-2]
        return cmd

    def _line(self) -> Item | object | None:
        idx = self.buf.find(b"\n")
        if 5 < idx <= KEY_MAX + 5 and self.buf.startswith(b"get ") and self.buf[idx - 1] == 0x0D:
            # the common case, a one-key get ("get k\r\n"): no tokenizing; anything unusual
            # in the key (blanks, NUL, control bytes) takes the general path below
            key = bytes(self.buf[4:idx - 1])
            if key.isalnum() or _plain(key):
                del self.buf[:idx + 1]
                return Command("get", keys=[key], line=b"get " + key)
        if idx < 0:
            if len(self.buf) > LINE_MAX:
                head = bytes(self.buf[:110]).lstrip(b" ")
                lead = min(len(self.buf), 110) - len(head)
                if lead > 100 or not (head.startswith(b"get ") or head.startswith(b"gets ")):
                    return Close("command line too long")
                if len(self.buf) > GET_LINE_MAX:
                    return Close("get line too long", LINE_TOO_LONG)
            return None
        line = bytes(self.buf[:idx])
        del self.buf[:idx + 1]
        if len(line) > 1 and line[-1] == 0x0D:
            line = line[:-1]
        if len(line) > GET_LINE_MAX:
            return Close("get line too long", LINE_TOO_LONG)
        return self._command(line)

    def _command(self, line: bytes) -> Item | object:
        toks = [t for t in line.split(b" ") if t]
        nt = len(toks) + 1
        if not toks:
            return Reply(ERROR)
        name = _cstr(toks[0]).decode("latin-1")
        if name in ("get", "gets"):
            if nt < 3:
                return Reply(ERROR)
            keys = toks[1:]
            if any(len(k) > KEY_MAX for k in keys):
                return Reply(BAD_FORMAT)
            return Command(name, keys=keys, line=line)
        if name == "stats":
            return Command(name, args=toks[1:], line=line)
        if name in ("version", "quit"):
            return Command(name, line=line)
        allowed = _NTOKENS.get(name)
        if allowed is None or nt not in allowed:
            return Reply(ERROR)
        noreply = _cstr(toks[-1]) == b"noreply"
        cmd = Command(name, keys=toks[1:2], noreply=noreply, line=line)
        err = getattr(self, "_p_" + name, self._p_storage)(cmd, toks, nt)
        if err is not None:
            return Reply(b"" if noreply else err, noreply)
        if name in STORAGE:
            return self._expect_data(cmd, toks)
        return cmd

    def _p_storage(self, cmd: Command, toks: list[bytes], nt: int) -> bytes | None:
        if len(toks[1]) > KEY_MAX:
            return BAD_FORMAT
        flags, exptime, vlen = strtoul(toks[2], 32), strtol32(toks[3]), strtol32(toks[4])
        if flags is None or exptime is None or vlen is None:
            return BAD_FORMAT
        if cmd.name == "cas":
            cas = strtoul(toks[5])
            if cas is None:
                return BAD_FORMAT
            cmd.cas = cas
        if vlen < 0 or vlen > INT_MAX - 2:
            return BAD_FORMAT
        cmd.flags, cmd.exptime, cmd.delta = flags, exptime, vlen
        return None

    def _expect_data(self, cmd: Command, toks: list[bytes]) -> Item | object:
        vlen = cmd.delta
        cmd.delta = 0
        if vlen > self.item_size_max:
            # memcached answers at once and swallows the block; a set also drops the old value
            self.swallow = vlen + 2
            cmd.too_large = True
            return cmd
        self.pending, self.need = cmd, vlen + 2
        return _AGAIN

    def _p_incr(self, cmd: Command, toks: list[bytes], nt: int) -> bytes | None:
        if len(toks[1]) > KEY_MAX:
            return BAD_FORMAT
        d = strtoul(toks[2])
        if d is None:
            return BAD_DELTA
        cmd.delta = d
        return None

    _p_decr = _p_incr

    def _p_touch(self, cmd: Command, toks: list[bytes], nt: int) -> bytes | None:
        if len(toks[1]) > KEY_MAX:
            return BAD_FORMAT
        e = strtol32(toks[2])
        if e is None:
            return BAD_EXPTIME
        cmd.exptime = e
        return None

    def _p_delete(self, cmd: Command, toks: list[bytes], nt: int) -> bytes | None:
        if nt > 3:
            zero = _cstr(toks[2]) == b"0"
            if not ((nt == 4 and (zero or cmd.noreply)) or (nt == 5 and zero and cmd.noreply)):
                return BAD_DELETE
        if len(toks[1]) > KEY_MAX:
            return BAD_FORMAT
        return None

    def _p_flush_all(self, cmd: Command, toks: list[bytes], nt: int) -> bytes | None:
        cmd.keys = []
        if nt != (3 if cmd.noreply else 2):
            e = strtol32(toks[1])
            if e is None:
                return BAD_EXPTIME
            cmd.delay = e
        return None

    def _p_verbosity(self, cmd: Command, toks: list[bytes], nt: int) -> bytes | None:
        cmd.keys = []
        if strtoul(toks[1], 32) is None:
            return BAD_FORMAT
        return None


_AGAIN = object()
_PLAIN = bytes(range(0x21, 0x7F))


def _plain(key: bytes) -> bool:
    """Printable ASCII without blanks: tokenized exactly as the general parser would."""
    return not key.translate(None, _PLAIN)


def value_block(key: bytes, flags: int, data: bytes, cas: int | None = None) -> bytes:
    head = b"VALUE %s %d %d" % (key, flags, len(data))
    if cas is not None:
        head += b" %d" % cas
    return head + b"\r\n" + data + b"\r\n"
