"""The delegation manager as a pure state machine (spec 3.3): actions for every transition."""

from __future__ import annotations

from nodes.memcache.core import delegation as dm
from nodes.memcache.core.cache import ValueCache
from nodes.memcache.core.meta import CasBlock, Meta, css_prefix, decode


def ready(m: dm.Manager) -> dm.Manager:
    assert m.request("k", b"k", dm.R) == (dm.WAIT, [("ns_lock",)])
    assert m.ns_granted() == []
    return m


def meta(cas: int = 7) -> Meta:
    return Meta(b"k", cas, 0, 1, 0, [{"addr": "a:1", "epoch": 1}], 1, 1)


def test_acquire_hold_recall_release_writes_metadata_first():
    m = ready(dm.Manager())
    assert m.request("k", b"k", dm.W) == (dm.WAIT, [("lock", "k", dm.W)])
    assert m.request("k", b"k", dm.W) == (dm.WAIT, [])  # one CSS request per key
    assert m.granted("k", dm.W, 10, None) == []
    assert m.request("k", b"k", dm.W)[0] == dm.READY
    ks = m.hold("k")
    assert m.request("k", b"k", dm.R) == (dm.WAIT, [])  # local use is exclusive
    ks.meta, ks.dirty = meta(), True
    assert m.recall("k", 9) == []  # older than the delegation held: ignored
    assert m.recall("k", 10) == []  # holder still busy: wait for it
    assert m.unhold("k") == [("release", "k", ks.meta)]
    assert m.request("k", b"k", dm.R) == (dm.WAIT, [])  # releasing: new requests wait
    assert m.released("k") == []
    assert m.request("k", b"k", dm.R) == (dm.WAIT, [("lock", "k", dm.R)])


def test_absent_key_is_deleted_at_release_and_clean_keys_are_left():
    m = ready(dm.Manager())
    m.request("k", b"k", dm.W)
    m.granted("k", dm.W, 3, meta())
    ks = m.hold("k")
    ks.meta, ks.dirty = None, True
    m.unhold("k")
    assert m.recall("k", 3) == [("release", "k", dm.DELETE)]
    m.released("k")
    m.request("k", b"k", dm.R)
    m.granted("k", dm.R, 4, meta())
    assert m.recall("k", 4) == [("release", "k", None)]


def test_upgrade_orphans_eviction_and_ns_recall():
    m = ready(dm.Manager(max_items=1))
    m.request("k", b"k", dm.R)
    m.granted("k", dm.R, 1, None)
    assert m.request("k", b"k", dm.W) == (dm.WAIT, [("lock", "k", dm.W)])  # R -> ACQ_W
    assert m.recall("k", 1) == []  # acquiring: ignored (CSS repeats recalls)
    m.granted("k", dm.W, 2, None)
    assert m.recall("zz", 5) == [("unlock", "zz")]  # granted behind our back: give it back
    assert m.request("j", b"j", dm.R) == (dm.WAIT, [("lock", "j", dm.R)])
    assert m.granted("j", dm.R, 3, None) == [("release", "k", None)]  # LRU beyond max
    m.released("k")
    assert m.ns_recall() == [("release", "j", None)]
    assert m.request("x", b"x", dm.R) == (dm.WAIT, [])  # NS recalled: wait
    assert m.released("j") == [("ns_unlock",)]
    m.ns_released()
    m.flushing = True
    assert m.request("x", b"x", dm.R) == (dm.WAIT, [])  # flushing: NS not retaken
    m.flushing = False
    assert m.request("x", b"x", dm.R) == (dm.WAIT, [("ns_lock",)])


def test_failed_lock_and_reset():
    m = ready(dm.Manager())
    m.request("k", b"k", dm.W)
    assert m.failed("k") == []
    assert m.request("k", b"k", dm.W) == (dm.WAIT, [("lock", "k", dm.W)])
    m.reset()
    assert m.keys == {} and m.ns == dm.NS_NONE


def test_meta_cache_and_cas_block():
    assert decode(meta().encode()) == meta()
    for bad in (b"\xc1", b"\x90", b"\x81\xa3key\x01"):
        try:
            decode(bad)
            raise AssertionError("accepted")
        except ValueError:
            pass
    c = ValueCache(checksum=True, checksum_interval=1, expire_interval=10)
    c.put("a:1", b"k", 7, 0, b"v", now=0)
    assert c.get("a:1", b"k", 8, now=0) is None  # another version: dropped
    c.put("a:1", b"k", 7, 0, b"v", now=0)
    c.entries[("a:1", b"k")].data = b"X"  # memory corruption
    assert c.get("a:1", b"k", 7, now=0.5) is not None  # not re-checked yet
    assert c.get("a:1", b"k", 7, now=2) is None and c.checksum_errors == 1
    c.put("a:1", b"k", 7, 0, b"v", now=0)
    assert c.get("a:1", b"k", 7, now=11) is None  # older than expire_interval
    b = CasBlock()
    assert b.take() is None
    b.refill(2000)
    assert (b.take(), b.take()) == (1001, 1002)


def test_recall_during_acquisition_is_remembered_and_honoured_after_one_use():
    # the recall can overtake our own grant (pushed when the other proxy queued behind us):
    # forgetting it left the other proxy waiting for the next recall repeat or its css_wait
    m = ready(dm.Manager())
    assert m.request("k", b"k", dm.W) == (dm.WAIT, [("lock", "k", dm.W)])
    assert m.recall("k", 10) == []
    assert m.granted("k", dm.W, 10, None) == []
    assert m.request("k", b"k", dm.W)[0] == dm.READY  # the waiting request is served...
    ks = m.hold("k")
    ks.meta, ks.dirty = meta(), True
    assert m.request("k", b"k", dm.R) == (dm.WAIT, [])  # ...but nobody after it
    assert m.unhold("k") == [("release", "k", ks.meta)]  # then the key goes to the other


def test_grant_without_recall_is_kept():
    m = ready(dm.Manager())
    m.request("k", b"k", dm.W)
    m.granted("k", dm.W, 10, None)
    m.hold("k")
    assert m.unhold("k") == []
    assert m.request("k", b"k", dm.R)[0] == dm.READY


def test_late_grant_is_unlocked_unless_the_key_is_wanted():
    m = ready(dm.Manager())
    assert m.late_grant("k") == [("unlock", "k")]
    m.request("k", b"k", dm.R)
    assert m.late_grant("k") == []  # a new request is under way: CSS answers it at once


def test_css_prefix_escapes_a_name_space_into_one_component():
    assert css_prefix("space0") == "PaxosMemcache/space0"  # unchanged for the old names
    assert css_prefix("a/b") == "PaxosMemcache/a%2Fb"
    assert css_prefix("a%2Fb") != css_prefix("a/b")
    assert css_prefix(".") == "PaxosMemcache/%2E" and css_prefix("..") == "PaxosMemcache/%2E%2E"
    assert css_prefix("\u00e9") == "PaxosMemcache/%C3%A9"
