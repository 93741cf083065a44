"""CSS: a durable three-member Paxos cell (sessions, locks, small files, counters)."""

VERSION = "0.1.0"
PROTOCOL = 1
