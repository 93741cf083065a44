"""The wheels `paxos install` ships: this version's node programs and what they import.

Hosts have no package index, so everything they install comes from here. Our own wheel is built
in-process from the package folders this admin runs (deterministic: sorted entries, fixed
timestamps), so it needs neither the source tree's build back-end nor the network; the node
programs' dependencies (msgpack, PyYAML) and the installer (pip, run from its wheel, never
installed on the host) are repacked from the distributions installed beside this admin, which
are exactly the versions it was tested with. A host whose Python cannot take those (another
minor version or machine) gets them through `pip download` for its interpreter instead.

The bundle is cached in `$PAXOS_HOME/var/wheels/<version>-<build>/`, where `build` is a hash of
the sources and of the dependencies' versions, so a second install builds nothing and a changed
source tree is a new build even when the version number is the same.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from paxoslog.errors import RemoteError

DIST = "paxoslog"
PACKAGES = ("paxoslog", "nodes")
# What nodes/ imports beyond the standard library: msgpack, uvloop (the daemons run on it when
# present) and yaml (through paxoslog.core.stamp). The admin-only dependencies (paramiko, cmd2,
# dulwich) stay off hosts.
NODE_DEPS = ("msgpack", "PyYAML", "uvloop")
INSTALLER = "pip"
# The admin's console script needs paramiko, cmd2 and dulwich: never put it on a host.
ADMIN_ONLY_SCRIPTS = frozenset({"paxos"})
BUILD_FILE = "paxoslog/BUILD"  # inside our wheel: the build id `paxos-node version` reports
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class WheelError(RemoteError):
    """The wheels for a host cannot be built, found or downloaded."""


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _source_files() -> list[tuple[str, Path]]:
    """(path in the wheel, file) of every file of our packages, sorted; no byte code."""
    import importlib.util

    out = []
    for package in PACKAGES:
        # found, not imported: the admin packages the node programs but never runs their code
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise WheelError(f"cannot find the {package} package to build the wheel from")
        root = Path(spec.origin).resolve().parent
        base = root.parent
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in filenames:
                if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                    continue
                path = Path(dirpath, name)
                rel = path.relative_to(base).as_posix()
                if rel != BUILD_FILE and path.is_file() and not path.is_symlink():
                    out.append((rel, path))
    return sorted(out)


def _dep_versions() -> list[tuple[str, str]]:
    return [(name, md.version(name)) for name in (*NODE_DEPS, INSTALLER)]


_build_lock = threading.Lock()
_build_memo: str | None = None


def local_build() -> str:
    """This admin's build id: 12 hex digits of the sources and the dependencies' versions."""
    global _build_memo
    with _build_lock:
        if _build_memo is None:
            digest = hashlib.sha256(md.version(DIST).encode() + b"\0")
            for rel, path in _source_files():
                data = path.read_bytes()
                digest.update(f"{rel}\0{len(data)}\0".encode())
                digest.update(data)
            for name, version in _dep_versions():
                digest.update(f"{name}=={version}\0".encode())
            _build_memo = digest.hexdigest()[:12]
        return _build_memo


def local_version() -> str:
    return md.version(DIST)


@dataclass(frozen=True)
class Bundle:
    """The wheels of one build in one folder: `wheels` to install (ours first), `installer`
    the pip wheel that installs them, `tags` the interpreter tags the dependencies need
    (empty when they are pure Python)."""

    version: str
    build: str
    directory: Path
    wheels: tuple[str, ...]
    installer: str
    tags: frozenset[str]


# ---------------------------------------------------------------- writing wheels


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(dest: Path, entries: list[tuple[str, bytes]], dist_info: str) -> None:
    """A wheel with the given entries plus its RECORD, written atomically to `dest`."""
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in entries]
    record.append(f"{dist_info}/RECORD,,")
    entries = [*entries, (f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode())]
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    os.replace(tmp, dest)


def _own_wheel(directory: Path, version: str, build: str) -> str:
    dist = md.distribution(DIST)
    name = f"{DIST}-{version}-py3-none-any.whl"
    info = f"{DIST}-{version}.dist-info"
    requires = [r for r in (dist.requires or []) if _normalize(re.split(r"[ ;<>=!~\[(]", r)[0])
                in {_normalize(d) for d in NODE_DEPS}]
    meta = [
        "Metadata-Version: 2.1", f"Name: {DIST}", f"Version: {version}",
        f"Summary: {dist.metadata.get('Summary') or 'PAXOS node programs'}",
        f"Requires-Python: {dist.metadata.get('Requires-Python') or '>=3.11'}",
        *[f"Requires-Dist: {r}" for r in requires],
    ]
    scripts = sorted(f"{ep.name} = {ep.value}" for ep in dist.entry_points
                     if ep.group == "console_scripts" and ep.name not in ADMIN_ONLY_SCRIPTS)
    entries = [(rel, path.read_bytes()) for rel, path in _source_files()]
    entries.append((BUILD_FILE, f"{build}\n".encode()))
    entries += [
        (f"{info}/METADATA", ("\n".join(meta) + "\n").encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: paxoslog\nRoot-Is-Purelib: true\n"
                          b"Tag: py3-none-any\n"),
        (f"{info}/entry_points.txt", ("[console_scripts]\n" + "\n".join(scripts) + "\n").encode()),
    ]
    _write_wheel(directory / name, entries, info)
    return name


def _wheel_tags(wheel_text: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in wheel_text.splitlines()
            if line.startswith("Tag:")]


def _compressed_tag(tags: list[str]) -> str:
    parts: list[list[str]] = [[], [], []]
    for tag in tags:
        for i, piece in enumerate(tag.split("-")):
            if piece not in parts[i]:
                parts[i].append(piece)
    return "-".join(".".join(p) for p in parts)


def _repack(name: str, directory: Path) -> tuple[str, list[str]]:
    """An installed distribution as a wheel again (its files as installed, minus byte code,
    scripts outside site-packages and the installer's own records); returns the file name and
    its tags."""
    dist = md.distribution(name)
    wheel_text = dist.read_text("WHEEL")
    if not wheel_text or not dist.files:
        raise WheelError(f"cannot make a wheel of {name}: it was not installed from a wheel")
    tags = _wheel_tags(wheel_text)
    base = Path(dist.locate_file(""))
    info = next((f.parts[0] for f in dist.files if f.parts[0].endswith(".dist-info")), None)
    if info is None:
        raise WheelError(f"cannot make a wheel of {name}: no dist-info")
    skip = {f"{info}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    entries = []
    for f in sorted(dist.files, key=str):
        rel = f.as_posix()
        if rel.startswith("../") or "__pycache__" in f.parts or rel in skip or rel.endswith(".pyc"):
            continue
        entries.append((rel, (base / rel).read_bytes()))
    version = dist.version
    filename = f"{_normalize(info.removesuffix('.dist-info').rsplit('-', 1)[0])}-{version}-" \
        f"{_compressed_tag(tags)}.whl"
    _write_wheel(directory / filename, entries, info)
    return filename, tags


def bundle(cache: Path) -> Bundle:
    """This build's wheels, from the cache or made now (then cached)."""
    version, build = local_version(), local_build()
    directory = cache / f"{version}-{build}"
    index = directory / "INDEX"
    if not index.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
        try:
            lines = [f"wheel {_own_wheel(tmp, version, build)}"]
            for dep in NODE_DEPS:
                filename, tags = _repack(dep, tmp)
                lines.append(f"wheel {filename}")
                lines += [f"tag {t}" for t in tags if not t.startswith("py")]
            lines.append(f"installer {_repack(INSTALLER, tmp)[0]}")
            (tmp / "INDEX").write_text("\n".join(lines) + "\n")
            try:
                os.rename(tmp, directory)
            except OSError:
                if not index.is_file():  # not another admin's identical bundle: a real error
                    raise
        except OSError as e:
            raise WheelError(f"cannot build the wheels in {cache}: {e.strerror or e}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _prune(cache, keep=directory)
    wheels, tags, installer = [], set(), ""
    for line in index.read_text().splitlines():
        kind, _, value = line.partition(" ")
        if kind == "wheel":
            wheels.append(value)
        elif kind == "tag":
            tags.add(value)
        elif kind == "installer":
            installer = value
    return Bundle(version, build, directory, tuple(wheels), installer, frozenset(tags))


def _prune(cache: Path, keep: Path, builds: int = 3) -> None:
    """Keep the wheels of the newest `builds` builds (each source change is a new build, and
    each is a few MiB); the one just made always stays."""
    try:
        found = [p for p in cache.iterdir() if not p.name.startswith(".") and p.is_dir()
                 and not p.is_symlink()]
        found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    names = {p.name.split("-cp")[0] for p in found}  # a build with its downloads
    newest = sorted(names, key=lambda n: max(p.stat().st_mtime for p in found
                                              if p.name.split("-cp")[0] == n), reverse=True)
    stale = set(newest[builds:]) - {keep.name}
    for p in found:
        if p.name.split("-cp")[0] in stale:
            shutil.rmtree(p, ignore_errors=True)


def python_tag(python: str) -> str:
    major, minor = python.split(".")[:2]
    return f"cp{major}{minor}"


def fits(bundle: Bundle, python: str, machine: str) -> bool:
    """Whether the bundle's dependency wheels install on a CPython `python` on `machine`."""
    want = python_tag(python)
    return all(t.split("-")[0] == want and (machine in t.split("-")[2]) for t in bundle.tags)


def download_deps(bundle: Bundle, python: str, machine: str) -> Path:
    """The dependencies for another interpreter (CI and admin hosts reach PyPI; the hosts do
    not): `pip download` once into a cached folder beside the bundle, with our own wheel and the
    installer copied in."""
    tag = python_tag(python)
    directory = bundle.directory.parent / f"{bundle.version}-{bundle.build}-{tag}-{machine}"
    if (directory / "INDEX").is_file():
        return directory
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=bundle.directory.parent))
    try:
        pins = [f"{name}=={md.version(name)}" for name in NODE_DEPS]
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", ".".join(python.split(".")[:2]), "--abi", tag,
               "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_28_{machine}",
               "-d", str(tmp), *pins]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["failed"])[-1][:200]
            raise WheelError(f"no wheels of {', '.join(pins)} for Python {python} on {machine}:"
                             f" {last}")
        for name in (bundle.wheels[0], bundle.installer):
            shutil.copyfile(bundle.directory / name, tmp / name)
        (tmp / "INDEX").write_text("downloaded\n")
        os.rename(tmp, directory)
    except subprocess.TimeoutExpired:
        raise WheelError(f"pip download for Python {python} timed out") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory
