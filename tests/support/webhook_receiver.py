#!/usr/bin/env python3
"""A webhook receiver for the whole-system tests: an HTTP server on 127.0.0.1 that checks
Standard Webhooks signatures with its own code (independent of the service's C++), records every
request, and answers each path as a test scripted it. Python 3 standard library only.

    webhook_receiver.py [--port N] [--tolerance SECONDS] [--quiet]

Prints the port it listens on (N, or one the system chose for 0, the default) as the first line
of stdout, then serves until killed, logging each request on stderr (unless --quiet).
Control API (JSON in and out):

    POST /_control/secret   {"path": "/hook1", "secrets": ["whsec_...", ...]}
        The secrets a delivery to `path` may be signed with (replaces earlier ones).
    POST /_control/script   {"path": "/hook1", "responses": [{"status": 500}, {"status": 200},
                             {"status": 429, "retry_after": 2}, {"status": 410},
                             {"status": 302, "location": "http://169.254.169.254/"},
                             {"delay_s": 15, "status": 200}, {"status": 200, "body": "ok"}]}
        The answers to the next requests to `path`, consumed in order (replacing the rest of any
        earlier script); past the end every request gets 200. "headers" adds any header.
    GET  /_control/requests[?path=/hook1]
        Every request received (to that path), oldest first: {"path", "method", "query",
        "headers" (names lower-cased), "body" (text; undecodable bytes replaced), "time" (Unix
        seconds), "verified" (bool), "verify_error" (why not, or null), "status" (the answer)}.
    POST /_control/reset    Forgets secrets, scripts and requests.

Every other request (any method, any path) is recorded and answered by its path's script.
"""

import argparse
import base64
import binascii
import collections
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20  # a webhook body is small; refuse floods


def secret_key(secret):
    """The HMAC key of a Standard Webhooks secret: base64 after an optional "whsec_"."""
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_"):]
    secret += "=" * (-len(secret) % 4)
    return base64.b64decode(secret, validate=True)


def verify(secrets, headers, body, tolerance, now):
    """None when the delivery is authentic, else why not (the specification's receiver rules)."""
    if not secrets:
        return "no secret registered for this path"
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if msg_id is None or timestamp is None or signatures is None:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    if not timestamp.isdigit():
        return f"webhook-timestamp {timestamp!r} is not a number"
    if abs(now - int(timestamp)) > tolerance:
        return f"webhook-timestamp {timestamp} is more than {tolerance} s from now ({int(now)})"
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = []
    for secret in secrets:
        try:
            key = secret_key(secret)
        except (binascii.Error, ValueError):
            return f"registered secret {secret[:10]}... is not base64"
        mac = hmac.new(key, signed, hashlib.sha256).digest()
        expected.append(base64.b64encode(mac).decode())
    for entry in signatures.split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1":
            continue
        if any(hmac.compare_digest(signature, e) for e in expected):
            return None
    return "no v1 signature matches"


class Receiver:
    def __init__(self, tolerance):
        self.tolerance = tolerance
        self.lock = threading.Lock()
        self.secrets = {}  # path -> [secret]
        self.scripts = collections.defaultdict(collections.deque)  # path -> answers
        self.requests = []

    def reset(self):
        with self.lock:
            self.secrets.clear()
            self.scripts.clear()
            self.requests.clear()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webhook-receiver"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if not self.server.quiet:
            sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {format % args}\n")

    def send_json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        receiver = self.server.receiver
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self.read_body()
        except ValueError:
            self.send_json(413, {"error": "body too large"})
            return
        if url.path.startswith("/_control/"):
            self.control(receiver, url, body)
            return

        now = time.time()
        headers = {name.lower(): value for name, value in self.headers.items()}
        with receiver.lock:
            secrets = list(receiver.secrets.get(url.path, []))
            script = receiver.scripts[url.path]
            answer = script.popleft() if script else {}
        error = verify(secrets, headers, body, receiver.tolerance, now)
        status = int(answer.get("status", 200))
        with receiver.lock:
            receiver.requests.append({
                "path": url.path, "method": self.command, "query": url.query,
                "headers": headers, "body": body.decode("utf-8", "replace"), "time": now,
                "verified": error is None, "verify_error": error, "status": status,
            })
        time.sleep(float(answer.get("delay_s", 0)))
        data = str(answer.get("body", "")).encode()
        try:
            self.send_response(status)
            if "retry_after" in answer:
                self.send_header("Retry-After", str(answer["retry_after"]))
            if "location" in answer:
                self.send_header("Location", answer["location"])
            for name, value in answer.get("headers", {}).items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the sender gave up waiting (a scripted delay)

    def control(self, receiver, url, body):
        try:
            request = json.loads(body) if body else {}
        except json.JSONDecodeError as e:
            self.send_json(400, {"error": f"not JSON: {e}"})
            return
        if url.path == "/_control/requests" and self.command == "GET":
            path = urllib.parse.parse_qs(url.query).get("path", [None])[0]
            with receiver.lock:
                found = [r for r in receiver.requests if path is None or r["path"] == path]
            self.send_json(200, found)
        elif url.path == "/_control/secret" and self.command == "POST":
            with receiver.lock:
                receiver.secrets[request["path"]] = list(request["secrets"])
            self.send_json(200, {"ok": True})
        elif url.path == "/_control/script" and self.command == "POST":
            with receiver.lock:
                receiver.scripts[request["path"]] = collections.deque(request["responses"])
            self.send_json(200, {"ok": True})
        elif url.path == "/_control/reset" and self.command == "POST":
            receiver.reset()
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, {"error": f"no control {self.command} {url.path}"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tolerance", type=int, default=300,
                        help="seconds a webhook-timestamp may be from now (default 300)")
    parser.add_argument("--quiet", action="store_true", help="no log of requests on stderr")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.receiver = Receiver(args.tolerance)
    server.quiet = args.quiet
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
