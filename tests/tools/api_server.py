#!/usr/bin/env python3
"""api_server.py - a steerable bundle API for tests (standard library only).

Serves the bundle file at every path but /control, with an ETag (hash of the content) and
Last-Modified, answering 304 to a matching If-None-Match or If-Modified-Since. GET /control
steers the following requests and reports what the server saw:

  /control?mode=X[&times=K]   X: one of the modes below ("normal" by default). With times=K
                              the mode applies to the next K bundle requests, then "normal"
                              is back.
  /control?count              {"bundle": n, "hops": n, "control": n, "connections": n,
                               "paths": {path: n}, "statuses": {"200": n, "304": n, ...}};
                              "connections": connections that carried a bundle request
                              (keep-alive reuse shows as fewer connections); "statuses": the
                              status codes of the answers to bundle and hop requests.
  /control?last_headers       the headers of the last bundle request, names in lower case.
  /control?reset              counts and last headers back to nothing.

Modes: normal serves the bundle; status:N answers N; hang accepts and never answers; drip[:MS]
sends the headers, then one byte every MS ms (1000); truncate announces 100 bytes more than it
sends, then closes; big and bigchunked send --big-bytes bytes (with Content-Length, or chunked
without) with the ETag "big-N" (N: that size), and 304 to a request that names it; notjson and wrongstructure answer 200 with text that is not JSON, or JSON without
"general"; redirect:N chains N redirects (/hop/1/N ... /hop/N/N) before the bundle; location:URL
redirects to URL; close closes the connection without answering; garbage answers a line that is
not HTTP, then closes. With --tls-cert and --tls-key the server speaks https.

With --sig, a path ending in .sig is the bundle's signature: the file --bundle names plus .sig
(200, re-read on every request; 404 when there is none), whatever the mode; counted as "sig".

Prints the port on the first line of standard output. Ends on SIGTERM/SIGINT, or after
--max-seconds whatever happens.
"""
import argparse
import email.utils
import hashlib
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_BUNDLE = b'{"general": {"status": "enabled"}, "domains": []}\n'
HOP_PREFIX = "/hop/"


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.mode = "normal"
        self.times = None  # bundle requests left in this mode; None: until changed
        self.reset()

    def reset(self):
        self.counts = {"bundle": 0, "hops": 0, "control": 0, "connections": 0, "sig": 0}
        self.paths = {}
        self.statuses = {}
        self.last_headers = {}

    def take_mode(self):
        """The mode for one bundle request (counts down a times=K mode)."""
        with self.lock:
            mode = self.mode
            if self.times is not None:
                self.times -= 1
                if self.times <= 0:
                    self.mode, self.times = "normal", None
            return mode


def bundle_bytes(state):
    path = state.args.bundle
    if not path:
        return DEFAULT_BUNDLE, int(time.time())
    with open(path, "rb") as f:
        data = f.read()
    return data, int(os.stat(path).st_mtime)


SIMPLE_MODES = {"normal", "hang", "truncate", "big", "bigchunked", "notjson", "wrongstructure",
                "close", "garbage"}


def valid_mode(mode):
    name, colon, arg = mode.partition(":")
    if name in SIMPLE_MODES:
        return not colon
    if name in ("status", "redirect", "drip"):
        return arg.isdigit() or (name == "drip" and not colon)
    return name == "location" and bool(arg)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dynacode-test-api/1"
    timeout = 30  # an idle keep-alive connection is dropped after this
    state = None  # set in main

    def log_message(self, fmt, *args):
        if self.state.args.verbose:
            sys.stderr.write("api_server: " + (fmt % args) + "\n")

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle and delayed ACKs
        # add 40 ms to every answer on a reused connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()  # a failure ends this connection (handle_error)

    def send_response(self, code, message=None):
        st = self.state
        if getattr(self, "counts_status", False):
            with st.lock:
                st.statuses[str(code)] = st.statuses.get(str(code), 0) + 1
        super().send_response(code, message)

    # ---- small writers ----
    def send_body(self, code, body, ctype="application/json", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, obj):
        self.send_body(200, (json.dumps(obj) + "\n").encode())

    def drop(self):
        """Close the connection now, whatever was (not) sent."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- requests ----
    def do_GET(self):
        st = self.state
        parts = urlsplit(self.path)
        self.counts_status = parts.path != "/control"
        if parts.path == "/control":
            with st.lock:
                st.counts["control"] += 1
            return self.control(parse_qs(parts.query, keep_blank_values=True))
        if st.args.sig and parts.path.endswith(".sig"):
            return self.signature()
        with st.lock:
            if parts.path.startswith(HOP_PREFIX):
                st.counts["hops"] += 1
            else:
                st.counts["bundle"] += 1
            st.paths[parts.path] = st.paths.get(parts.path, 0) + 1
            if not getattr(self, "counted_connection", False):
                self.counted_connection = True
                st.counts["connections"] += 1
            seen = {}
            for k, v in self.headers.items():
                k = k.lower()
                seen[k] = seen[k] + ", " + v if k in seen else v
            st.last_headers = seen
        if parts.path.startswith(HOP_PREFIX):
            return self.hop(parts.path)
        self.serve(st.take_mode())

    def signature(self):
        st = self.state
        with st.lock:
            st.counts["sig"] += 1
        try:
            with open((st.args.bundle or "") + ".sig", "rb") as f:
                body = f.read()
        except OSError as e:
            return self.send_body(404, ("no signature: %s\n" % e).encode(), "text/plain")
        self.send_body(200, body, "text/plain")

    def do_HEAD(self):
        self.counts_status = False
        self.send_body(405, b"")

    def control(self, q):
        st = self.state
        if "mode" in q:
            mode = q["mode"][0]
            if not valid_mode(mode) or ("times" in q and not q["times"][0].isdigit()):
                return self.send_body(400, b'{"error": "unknown mode"}\n')
            with st.lock:
                st.mode = mode
                st.times = int(q["times"][0]) if "times" in q else None
            return self.send_json({"mode": mode})
        if "count" in q:
            with st.lock:
                out = dict(st.counts)
                out["paths"] = dict(st.paths)
                out["statuses"] = dict(st.statuses)
            return self.send_json(out)
        if "last_headers" in q:
            with st.lock:
                out = dict(st.last_headers)
            return self.send_json(out)
        if "reset" in q:
            with st.lock:
                st.reset()
            return self.send_json({"reset": True})
        self.send_body(400, b'{"error": "unknown control"}\n')

    def hop(self, path):
        # /hop/K/N: hop K of a chain of N redirects; the last one leads to the bundle.
        try:
            k, n = (int(x) for x in path[len(HOP_PREFIX):].split("/")[:2])
        except ValueError:
            return self.send_body(404, b"bad hop\n", "text/plain")
        if k < n:
            return self.redirect("%s%d/%d" % (HOP_PREFIX, k + 1, n))
        self.serve("normal")

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def serve(self, mode):
        st = self.state
        name, _, arg = mode.partition(":")
        if name == "status":
            code = int(arg)
            if code in (204, 304) or code < 200:
                self.send_response(code)
                self.end_headers()
                return
            return self.send_body(code, ("status %d\n" % code).encode(), "text/plain")
        if name == "hang":
            st.stop.wait(st.args.max_seconds)
            return self.drop()
        if name == "close":
            return self.drop()
        if name == "garbage":
            self.wfile.write(b"this is not HTTP\r\n\r\n")
            return self.drop()
        if name == "location":
            return self.redirect(arg)
        if name == "notjson":
            return self.send_body(200, b"this is not JSON\n", "text/plain")
        if name == "wrongstructure":
            return self.send_body(200, b'{"domains": []}\n')
        if name == "redirect":
            n = int(arg)
            if n <= 0:
                return self.serve("normal")
            return self.redirect("%s1/%d" % (HOP_PREFIX, n))
        if name in ("big", "bigchunked"):
            return self.big(chunked=name == "bigchunked")

        try:
            body, mtime = bundle_bytes(st)
        except OSError as e:
            return self.send_body(404, ("no bundle: %s\n" % e).encode(), "text/plain")
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
        lastmod = email.utils.formatdate(mtime, usegmt=True)
        validators = {"ETag": etag, "Last-Modified": lastmod}
        if name == "normal" and self.not_modified(etag, mtime):
            self.send_response(304)
            for k, v in validators.items():
                self.send_header(k, v)
            self.end_headers()
            return
        if name == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body)
            return self.drop()
        if name == "drip":
            return self.drip(body, int(arg or "1000") / 1000.0)
        self.send_body(200, body, extra=validators)

    def not_modified(self, etag, mtime):
        inm = self.headers.get("If-None-Match")
        if inm is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            tags = [t.strip() for t in inm.split(",")]
            return "*" in tags or etag in tags or ("W/" + etag) in tags
        ims = self.headers.get("If-Modified-Since")
        if ims:
            try:
                since = email.utils.parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                return False
            return mtime <= since
        return False

    def drip(self, body, interval):
        st = self.state
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        try:
            for i in range(len(body)):
                if st.stop.wait(interval):
                    break
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
        except OSError:
            pass
        self.drop()

    def big(self, chunked):
        total = self.state.args.big_bytes
        piece = b" " * 65536
        etag = '"big-%d"' % total
        inm = self.headers.get("If-None-Match")
        if inm is not None and etag in [t.strip() for t in inm.split(",")]:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(total))
        self.end_headers()
        try:
            left = total
            while left > 0 and not self.state.stop.is_set():
                n = min(left, len(piece))
                if chunked:
                    self.wfile.write(b"%x\r\n" % n + piece[:n] + b"\r\n")
                else:
                    self.wfile.write(piece[:n])
                left -= n
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            return self.drop()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client that went away mid-answer is part of the tests, not an error


def main():
    ap = argparse.ArgumentParser(description="steerable bundle API for tests")
    ap.add_argument("--port", type=int, default=0, help="0: pick a free one")
    ap.add_argument("--bundle", help="file served as the bundle (re-read on every request)")
    ap.add_argument("--big-bytes", type=int, default=20 * 1024 * 1024)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--tls-cert", help="PEM certificate: serve https")
    ap.add_argument("--tls-key", help="PEM key of --tls-cert")
    ap.add_argument("--sig", action="store_true",
                    help="serve BUNDLE.sig at every path ending in .sig")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    state = State(args)
    Handler.state = state
    server = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake runs in the connection's thread (Handler.setup), never in accept().
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    print(server.server_address[1], flush=True)

    def on_signal(signum, frame):
        state.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    state.stop.wait(args.max_seconds)
    # Ending the process closes every socket at once: no waiting for the serving loop or for a
    # hanging or dripping answer.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
