"""Pure consensus core and state machine: no sockets, files or clocks in here."""
