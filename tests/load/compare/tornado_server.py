"""tornado_server: the Python Tornado peer of tests/load/compare/run.sh (issue 10).

    python3 tornado_server.py PORT [ADDRESS]   (PORT 0: the kernel picks one)

One process, one IOLoop, a RequestHandler answering every GET with "Hello, world!"
(text/plain); Tornado's own HTTP/1.1 server does keep-alive, pipelining and Connection: close.
Prints "listening on ADDRESS:PORT" (flushed); SIGINT or SIGTERM stops it with status 0.
"""
import asyncio
import os
import signal
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write("Hello, world!")


async def main():
    port = int(sys.argv[1])
    address = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    sockets = tornado.netutil.bind_sockets(port, address, backlog=4096)
    server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/.*", Hello)]))
    server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {address}:{sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.stop()
    # Exit at once: asyncio.run would cancel the handlers of the load's last open connections,
    # and each would log a CancelledError traceback.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
