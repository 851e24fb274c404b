# An upstream for http_proxy_integration_test: a threaded HTTP/1.1 server on a free loopback
# port that prints "listening on 127.0.0.1:PORT" (ServerProcess reads it) and answers:
#   /headers        the request's fields as "Name: value" lines, with hop-by-hop fields of its
#                   own (Connection naming X-Hop, X-Hop, Keep-Alive) that a proxy must remove,
#                   and X-Upstream-Peer: the client port of the connection it came on
#   /status/N       status N with no body (204, 304) or a short one
#   /big/N          N bytes of a repeating pattern, Content-Length framed, written 1 MiB at a time
#                   (a connection closed mid-body counts in /aborted)
#   /aborted        how many /big responses ended with the connection closed under them
#   /hints/N        N interim 103 responses of 2 KiB each (written as fast as taken), then
#                   "hinted\n"
#   /die            Content-Length 100, then 10 bytes, then the connection is closed
#   /chunked        "hello chunked world\n" in three chunks (Transfer-Encoding: chunked)
#   /slow/MS        waits MS milliseconds, then "slept\n" with X-Upstream-Peer as for /headers
#   /echo (POST)    the request body
#   /early (POST)   413 with "early\n" and "Connection: close" before reading the body, then
#                   reads (and drops) the body and closes
#   /early/N (POST) 200 with N bytes of the pattern before reading the body, written in one go
#                   (blocking until taken), then reads the body and closes
#   /open/N (POST)  the same without "Connection: close": the request is not refused
#   /quick (POST)   200 "ok" at once, keep-alive, without reading the body (then closes)
#   /duplex (POST)  a chunked 200 head at once, then reads the whole body (Content-Length) and
#                   answers its length in the one chunk, keeping the connection
#   /requests       the request lines received since the previous /requests (this one
#                   included), one a line: what the proxy sent on, exactly
#   /count (PUT or POST)  reads the body (Content-Length or chunked) a block at a time, checks
#                   it against the repeating pattern (byte i is i % 256), and answers
#                   "<bytes> <ok|mismatch at N> <chunked|length>"
import http.server
import sys
import threading
import time

ABORTED = 0
LOCK = threading.Lock()
PATTERN = bytes(range(256)) * 4097  # 1 MiB and 256 bytes: any 1 MiB slice of the pattern
REQUEST_LINES = []  # every request line received, as received (/requests reads and clears)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def parse_request(self):
        ok = super().parse_request()
        if ok:
            with LOCK:
                REQUEST_LINES.append(self.requestline)
        return ok

    def reply(self, status, body=b"", fields=(), send_body=True):
        self.send_response(status)
        for name, value in fields:
            self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and status not in (204, 304):
            self.wfile.write(body)

    def write_pattern(self, n):
        """Writes n bytes of PATTERN, a block at a time."""
        while n > 0:
            block = PATTERN[: min(n, len(PATTERN))]
            self.wfile.write(block)
            n -= len(block)

    def drain_body(self):
        """Reads and drops a Content-Length body."""
        left = int(self.headers.get("Content-Length", "0"))
        while left > 0:
            block = self.rfile.read(min(left, 1 << 20))
            if not block:
                break
            left -= len(block)

    def route(self, send_body):
        path = self.path
        if path == "/headers":
            body = "".join(f"{k}: {v}\n" for k, v in self.headers.items()).encode()
            self.reply(200, body, [("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"),
                                   ("Keep-Alive", "timeout=5"),
                                   ("X-Upstream-Peer", str(self.client_address[1]))], send_body)
        elif path == "/requests":
            with LOCK:
                body = "".join(line + "\n" for line in REQUEST_LINES).encode("latin-1")
                REQUEST_LINES.clear()
            self.reply(200, body, (), send_body)
        elif path.startswith("/status/"):
            self.reply(int(path[8:]), b"short\n", (), send_body)
        elif path.startswith("/big/"):
            n = int(path[5:])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            if not send_body:
                return
            global ABORTED
            try:
                self.write_pattern(n)
            except (BrokenPipeError, ConnectionResetError):
                with LOCK:
                    ABORTED += 1
                self.close_connection = True
        elif path == "/aborted":
            with LOCK:
                count = ABORTED
            self.reply(200, b"%d\n" % count, (), send_body)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if send_body:
                for piece in (b"hello ", b"chunked ", b"world\n"):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
        elif path.startswith("/slow/"):
            time.sleep(int(path[6:]) / 1000.0)
            self.reply(200, b"slept\n", [("X-Upstream-Peer", str(self.client_address[1]))],
                       send_body)
        elif path == "/hints":
            # Two interim responses, then the final one (RFC 9110 §15.2: a proxy forwards them).
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n"
                             b"Connection: X-Hop\r\nX-Hop: 1\r\n\r\n"
                             b"HTTP/1.1 102 Processing\r\n\r\n")
            self.reply(200, b"hinted\n", (), send_body)
        elif path.startswith("/hints/"):
            hint = b"HTTP/1.1 103 Early Hints\r\nLink: <" + b"x" * 2000 + b">\r\n\r\n"
            for _ in range(int(path[7:])):
                self.wfile.write(hint)
            self.reply(200, b"hinted\n", (), send_body)
        elif path == "/die":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        else:
            self.reply(404, b"no such path\n", (), send_body)

    def do_GET(self):
        self.route(True)

    def do_HEAD(self):
        self.route(False)

    def do_OPTIONS(self):
        self.route(True)

    def do_TRACE(self):
        self.route(True)

    def count_body(self):
        # The pattern repeats every 256 bytes: byte i of the body is i % 256.
        received, bad = 0, None

        def check(block):
            nonlocal received, bad
            if bad is None:
                start = received % 256
                expected = PATTERN[start : start + len(block)]  # blocks are at most 1 MiB
                if block != expected:
                    bad = received + next(i for i in range(len(block)) if block[i] != expected[i])
            received += len(block)

        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        if chunked:
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:  # the last-chunk, then trailer fields up to an empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                while size > 0:
                    block = self.rfile.read(min(size, 1 << 20))
                    if not block:
                        raise ConnectionError("body cut short")
                    check(block)
                    size -= len(block)
                self.rfile.readline()  # the CRLF after the chunk's data
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left > 0:
                block = self.rfile.read(min(left, 1 << 20))
                if not block:
                    break
                check(block)
                left -= len(block)
        verdict = "ok" if bad is None else "mismatch at %d" % bad
        framing = "chunked" if chunked else "length"
        self.reply(200, ("%d %s %s\n" % (received, verdict, framing)).encode())

    def do_PUT(self):
        if self.path == "/count":
            self.count_body()
        else:
            self.reply(404, b"no such path\n")

    def do_POST(self):
        if self.path == "/count":
            self.count_body()
            return
        if self.path == "/early":
            self.reply(413, b"early\n", [("Connection", "close")])
            self.wfile.flush()
            self.drain_body()
            self.close_connection = True
            return
        if self.path == "/quick":
            self.reply(200, b"ok")
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/duplex":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            left = int(self.headers.get("Content-Length", "0"))
            received = 0
            while left > 0:
                block = self.rfile.read(min(left, 1 << 20))
                if not block:
                    break
                received += len(block)
                left -= len(block)
            text = ("%d\n" % received).encode()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(text), text))
            return
        if self.path.startswith("/early/") or self.path.startswith("/open/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            if self.path.startswith("/early/"):
                self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                self.write_pattern(n)
                self.drain_body()
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.reply(200, body, [("Content-Type", "application/octet-stream")])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("listening on 127.0.0.1:%d" % server.server_port, flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
