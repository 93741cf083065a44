"""Pure core of the proxy: no sockets, files or clocks (time is always passed in)."""
