"""A WebSocket echo server over TLS for the interop suite (Debian's python3-websockets).

Usage: ws_echo.py PORT CERT KEY. Listens on 127.0.0.1:PORT, echoes every message
(up to 2 MiB), and prints one line per connection and per message size, so the log
shows what crossed the tunnel.
"""
import asyncio
import ssl
import sys

import websockets


async def echo(ws, path=None):
    peer = ws.remote_address
    print(f"connection from {peer[0]}:{peer[1]} path {ws.path}", flush=True)
    async for message in ws:
        print(f"echo {len(message)} bytes", flush=True)
        await ws.send(message)


async def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    async with websockets.serve(echo, "127.0.0.1", port, ssl=ctx, max_size=2 << 20):
        await asyncio.Future()


asyncio.run(main())
