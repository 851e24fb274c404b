# An upstream for http_proxy_integration_test: a threaded HTTP/1.1 server on a free loopback
# port that prints "listening on 127.0.0.1:PORT" (ServerProcess reads it) and answers:
#   /headers        the request's fields as "Name: value" lines, with hop-by-hop fields of its
#                   own (Connection naming X-Hop, X-Hop, Keep-Alive) that a proxy must remove,
#                   and X-Upstream-Peer: the client port of the connection it came on
#   /status/N       status N with no body (204, 304) or a short one
#   /big/N          N bytes of a repeating pattern, Content-Length framed, written 1 MiB at a time
#   /die            Content-Length 100, then 10 bytes, then the connection is closed
#   /echo (POST)    the request body
import http.server
import sys

PATTERN = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", fields=(), send_body=True):
        self.send_response(status)
        for name, value in fields:
            self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and status not in (204, 304):
            self.wfile.write(body)

    def route(self, send_body):
        path = self.path
        if path == "/headers":
            body = "".join(f"{k}: {v}\n" for k, v in self.headers.items()).encode()
            self.reply(200, body, [("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"),
                                   ("Keep-Alive", "timeout=5"),
                                   ("X-Upstream-Peer", str(self.client_address[1]))], send_body)
        elif path.startswith("/status/"):
            self.reply(int(path[8:]), b"short\n", (), send_body)
        elif path.startswith("/big/"):
            n = int(path[5:])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            if not send_body:
                return
            while n > 0:
                block = PATTERN[: min(n, len(PATTERN))]
                self.wfile.write(block)
                n -= len(block)
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

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.reply(200, body, [("Content-Type", "application/octet-stream")])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("listening on 127.0.0.1:%d" % server.server_port, flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
