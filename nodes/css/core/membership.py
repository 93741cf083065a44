"""Replicated configuration and its changes (spec 2.8), as pure functions on plain maps.

Members are keyed by a Paxos id (an int, unique forever); `no` is the member's line in the cell
file. Genesis members have id == no; a joining member gets the next unused id, so the old and the
new holder of one `no` never share a ballot or a vote.

Configuration commands travel in the log as `{op: "_cfg", kind, expect, quorums, ...}`:
`add_learner` (a joining member receives the log, never votes), `replace` (joint phase: decisions
need majorities of the old and the new voters), `finalize` (the new voters alone; the old
member is retired) and `remove_learner` (an aborted or abandoned join: the learner leaves and its
member id is retired, so it can never come back under that id; voters are untouched, so it carries
no quorums). A learner promoted by `replace` is a voter: `remove_learner` refuses it, which makes
the decided `replace` the point of no return of a replacement.
"""

from __future__ import annotations

import copy
from typing import Any


def genesis(members: dict[int, dict]) -> dict:
    return {"version": 1, "next_id": max(members) + 1, "retired": [], "joint": None,
            "members": {no: {"no": no, "member_id": m.get("member_id"), "udp": m["udp"],
                             "tcp": m["tcp"], "role": "voter"} for no, m in members.items()}}


def voters(cfg: dict) -> list[int]:
    return sorted(i for i, m in cfg["members"].items() if m["role"] == "voter")


def quorums(cfg: dict) -> list[frozenset[int]]:
    if cfg.get("joint"):
        return [frozenset(cfg["joint"]["old"]), frozenset(cfg["joint"]["new"])]
    return [frozenset(voters(cfg))]


def cfg_quorums(value: Any) -> list[frozenset[int]] | None:
    """Quorums a logged value asks for, if it is a configuration entry (for phase 1 and 2)."""
    if isinstance(value, list):
        for c in value:
            if isinstance(c, dict) and c.get("op") == "_cfg" and c.get("quorums"):
                return [frozenset(q) for q in c["quorums"]]
    return None


def pending(cfg: dict) -> bool:
    return bool(cfg.get("joint")) or any(m["role"] == "learner" for m in cfg["members"].values())


def add_learner_cmd(cfg: dict, join: dict) -> dict | str:
    """The entry admitting a joining member, or an error code."""
    mid = join.get("member_id")
    if join.get("expect_cfg") != cfg["version"]:
        return "ECONFIG_CHANGED"
    if mid in cfg["retired"] or any(m["member_id"] == mid for m in cfg["members"].values()):
        return "EEXIST"
    if pending(cfg):
        return "EBUSY"
    if not isinstance(join.get("cno"), int) or not isinstance(mid, str):
        return "EINVAL"
    return {"op": "_cfg", "kind": "add_learner", "expect": cfg["version"], "id": cfg["next_id"],
            "no": join["cno"], "member_id": mid, "udp": join.get("udp"), "tcp": join.get("tcp")}


def replace_cmd(cfg: dict, no: int, new_id: int, expect: int) -> dict | str:
    if expect != cfg["version"]:
        return "ECONFIG_CHANGED"
    new = cfg["members"].get(new_id)
    old = [i for i, m in cfg["members"].items() if m["no"] == no and m["role"] == "voter"]
    if new is None or new["role"] != "learner" or new["no"] != no:
        return "EINVAL: the new member is not a learner for this number"
    if len(old) != 1:
        return "EINVAL: no voter holds this number"
    vs = voters(cfg)
    after = sorted(set(vs) - {old[0]} | {new_id})
    return {"op": "_cfg", "kind": "replace", "expect": expect, "old": old[0], "new": new_id,
            "quorums": [vs, after]}


def finalize_cmd(cfg: dict) -> dict:
    j = cfg["joint"]
    return {"op": "_cfg", "kind": "finalize", "expect": cfg["version"], "old": j["old_id"],
            "new": j["new_id"], "quorums": [j["new"]]}


def remove_learner_cmd(cfg: dict, pid: int, expect: int, why: str) -> dict | str:
    """The entry removing learner `pid` (`why`: "abort" or "timeout"), or an error code."""
    if expect != cfg["version"]:
        return "ECONFIG_CHANGED"
    m = cfg["members"].get(pid)
    if m is None or m["role"] != "learner":
        return "ENOT_LEARNER"
    return {"op": "_cfg", "kind": "remove_learner", "expect": expect, "id": pid,
            "member_id": m["member_id"], "no": m["no"], "why": why}


def apply_cfg(cfg: dict, cmd: dict) -> tuple[dict, str | None]:
    """Return (new configuration, error code or None). Deterministic on every member."""
    if cmd.get("expect") != cfg["version"]:
        return cfg, "ECONFIG_CHANGED"
    new = copy.deepcopy(cfg)
    kind = cmd.get("kind")
    if kind == "add_learner":
        new["members"][cmd["id"]] = {"no": cmd["no"], "member_id": cmd["member_id"],
                                     "udp": cmd["udp"], "tcp": cmd["tcp"], "role": "learner"}
        new["next_id"] = max(new["next_id"], cmd["id"] + 1)
    elif kind == "replace":
        if cmd.get("new") not in new["members"] or cmd.get("old") not in new["members"]:
            return cfg, "EINVAL"  # never proposed by a leader; refused alike everywhere
        new["members"][cmd["new"]]["role"] = "voter"
        new["joint"] = {"old": cmd["quorums"][0], "new": cmd["quorums"][1],
                        "old_id": cmd["old"], "new_id": cmd["new"]}
    elif kind == "finalize":
        if cmd.get("old") not in new["members"]:
            return cfg, "EINVAL"
        gone = new["members"].pop(cmd["old"])
        new["retired"].append(gone["member_id"])
        new["joint"] = None
    elif kind == "remove_learner":
        m = new["members"].get(cmd.get("id"))
        joint = new.get("joint") or {}
        # re-checked here, deterministically on every member: never a voter, never the member
        # a decided replace promoted (point of no return)
        if m is None or m["role"] != "learner" or m["member_id"] != cmd.get("member_id") \
                or joint.get("new_id") == cmd.get("id"):
            return cfg, "ENOT_LEARNER"
        del new["members"][cmd["id"]]
        if m["member_id"] not in new["retired"]:
            new["retired"].append(m["member_id"])
    else:
        return cfg, "EINVAL"
    new["version"] += 1
    return new, None
