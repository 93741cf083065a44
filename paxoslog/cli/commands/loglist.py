"""`log`'s filters (--author, --since), its `-p` diffs, and its output formats (YAML, JSON,
--oneline, -o table); colour and the pager are applied only on a terminal."""

from __future__ import annotations

from typing import Any

from paxoslog.cli import reports
from paxoslog.store import history
from paxoslog.store.gitlog import EVENT_PATH, EventLog, iso_time

_SHORT = 12  # commit id digits in --oneline and tables: unique in any log this tool keeps


def entries(log: EventLog, head_rev: int, ns: Any) -> list[dict]:
    """log_docs' documents, filtered; with -p each carries `diff`, the rendered configuration's
    change made by that commit. A linear walk: an old commit may carry a newer time (clocks
    differ between operators), so --since does not stop at the first older one."""
    author = ns.author.casefold() if ns.author else None
    since = ns.since
    out: list[dict] = []
    rev = head_rev
    for commit in log.walk_back():
        if ns.max_count is not None and len(out) >= ns.max_count:
            break
        who = commit.author.decode(errors="replace")
        if (author is None or author in who.casefold()) and (
                since is None or commit.commit_time >= since):
            doc = {"rev": rev, "commit": commit.id.decode(), "time": iso_time(commit),
                   "author": who,
                   "command": commit.message.decode(errors="replace").rstrip("\n")}
            if ns.patch:
                doc["diff"] = _patch(log, commit)
            out.append(doc)
        rev -= 1
    if ns.reverse:
        out.reverse()
    return out


def _patch(log: EventLog, commit: Any) -> str:
    def rendered(c: Any) -> dict[str, bytes]:
        files = log.files(c)
        files.pop(EVENT_PATH, None)
        return files

    old = rendered(log.commit(commit.parents[0])) if commit.parents else {}
    return "".join(e["diff"] for e in history.diff_entries(old, rendered(commit)))


def render(session: Any, docs: list[dict], oneline: bool) -> str:
    if session.as_json:
        return reports.render_docs(docs, reports.history_yaml, True)
    colour = _colour(session)
    if oneline:
        return "".join(f"{d['rev']} {d['commit'][:_SHORT]} {_line(d['command'])}\n"
                       for d in docs)
    if session.output == "table":
        rows = [{**d, "commit": d["commit"][:_SHORT]} for d in docs]
        return reports.render(session, docs, reports.history_yaml, rows,
                              ("rev", "commit", "time", "author", "command"))
    out = []
    for d in docs:
        out.append(reports.history_yaml({k: v for k, v in d.items() if k != "diff"}))
        if "diff" in d:
            out.append(_literal("diff", d["diff"], colour))
    return "".join(out)


def coloured_diff(session: Any, text: str) -> str:
    """`paxos diff`'s text for the terminal: a crafted log's files may hold control
    characters, shown escaped as `log -p` shows them."""
    text = "\n".join(_printable(line) for line in text.split("\n"))
    if not _colour(session):
        return text
    from paxoslog.cli import colour

    return colour.diff(text)


def _colour(session: Any) -> bool:
    from paxoslog.cli import colour

    return colour.enabled(session.out)


def _line(text: str) -> str:
    """One line, nothing a terminal would act on: a fetched log's message is hostile."""
    text = " ".join(text.split())
    return text if text.isprintable() else "".join(
        c if c.isprintable() else repr(c)[1:-1] for c in text)


def _printable(line: str) -> str:
    return line if line.isprintable() else "".join(
        c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in line)


def _literal(key: str, text: str, colour: bool) -> str:
    """`key: |` and the text indented: still one YAML document, the diff readable as is."""
    if not text:
        return f'{key}: ""\n'
    # A crafted log's files may hold control characters: a literal block cannot, and a
    # terminal must not act on them.
    lines = [_printable(line) for line in text.split("\n")]
    text = "\n".join(lines)
    if colour:
        from paxoslog.cli import colour as paint

        text = paint.diff(text)
    body = "".join(f"  {line}" if line.strip("\n") else line
                   for line in text.splitlines(keepends=True))
    return f"{key}: |\n{body}"
