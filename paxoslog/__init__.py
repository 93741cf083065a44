"""paxoslog: event-sourced admin tool for PAXOS memcache/CSS clusters."""
