#!/usr/bin/env python3
"""A loopback bridge: accepts TCP on 127.0.0.1:PORT and forwards each connection to a Unix
socket, byte for byte. For tools that speak HTTP over TCP only (schemathesis). The daemon sees
the bridge's uid as the peer.

    unix_bridge.py SOCKET PORT
"""
import asyncio
import sys


async def pipe(reader, writer):
    """Copies until end of stream, then half-closes: the other direction keeps flowing. Closing
    the whole socket here, with the peer's bytes still unread in it, makes the kernel answer with
    a reset, and the client loses an answer it had not read yet (an early error answer and
    close from the daemon looked like "closed without response")."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        pass


async def main(socket_path, port):
    async def handle(tcp_reader, tcp_writer):
        try:
            unix_reader, unix_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            tcp_writer.close()
            return
        try:
            await asyncio.gather(pipe(tcp_reader, unix_writer), pipe(unix_reader, tcp_writer))
        finally:
            unix_writer.close()
            tcp_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
