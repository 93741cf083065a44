"""`paxos-node`: the host agent the admin runs over SSH (spec nodes.md §4)."""
