"""I/O adapters around the pure core: storage, transport, asyncio server."""
