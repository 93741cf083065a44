"""Asyncio shell of the proxy: client listeners, backend pools, the CSS session."""
