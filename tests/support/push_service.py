#!/usr/bin/env python3
"""A local Web Push service (RFC 8030) for whole-system tests of the notifier.

Browsers only push through their vendor's service, so the tests point the notifier at this one
instead. It plays both sides a real service stands between: it mints subscriptions (a fresh
P-256 key pair and auth secret per subscription, kept here, as a browser would keep them), and it
accepts push messages the way a push service does, checking what a real one checks and then
decrypting them as the user agent would. The checks and the decryption are written here with
python3-cryptography, independently of the C++ code under test (src/notify/web_push.cpp).

Usage: push_service.py [--port N]   (0 or omitted: a free port)
Binds 127.0.0.1 only. The first line on stdout is the port; logs go to stderr.

Control API (JSON):
  POST /_control/subscribe         -> 201 {"id", "endpoint", "expirationTime": null,
                                           "keys": {"p256dh", "auth"}}
                                      the browser's PushSubscription.toJSON() shape plus "id";
                                      the endpoint is http://127.0.0.1:<port>/push/<id>
  GET  /_control/messages?id=ID    -> 200 [{"headers": {...}, "plaintext", "plaintext_base64",
                                           "received_at"}]  (oldest first; 404 unknown id)
  GET  /_control/attempts?id=ID    -> 200 [{"status", "reason", "received_at"}]: every POST to
                                      the endpoint, accepted or not, with why it was refused
  POST /_control/gone {"id", "status": 410}
                                   -> 200; from now on pushes to ID get that status (404 or 410)
Push API:
  POST /push/ID                    -> 201 with Location when the message is accepted;
                                      400 malformed (TTL, Topic, Urgency, Content-Encoding,
                                      body that does not decrypt), 401 bad or missing VAPID,
                                      404 unknown ID, 404/410 when scripted gone, 413 body
                                      over 4096 bytes
"""

import argparse
import base64
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAX_BODY = 4096  # RFC 8030 §7.2: what every push service must accept
MAX_VAPID_LIFETIME = 24 * 3600  # RFC 8292 §2
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
URGENCIES = {"very-low", "low", "normal", "high"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*=*", text):
        raise ValueError("not base64url")
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_vapid(authorization: str, audience: str, now: float) -> dict:
    """RFC 8292: 'vapid t=<JWT>, k=<key>'; returns the claims or raises Refused(401)."""
    scheme, _, params = authorization.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise Refused(401, "Authorization scheme is not vapid")
    values = {}
    for part in params.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            values[name.strip().lower()] = value.strip()
    if "t" not in values or "k" not in values:
        raise Refused(401, "Authorization lacks t= or k=")
    try:
        point = unb64url(values["k"])
        if len(point) != 65 or point[0] != 4:
            raise ValueError("k is not an uncompressed point")
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as e:
        raise Refused(401, f"bad VAPID key: {e}")
    parts = values["t"].split(".")
    if len(parts) != 3:
        raise Refused(401, "VAPID token is not a compact JWT")
    try:
        header = json.loads(unb64url(parts[0]))
        claims = json.loads(unb64url(parts[1]))
        signature = unb64url(parts[2])
    except ValueError as e:
        raise Refused(401, f"VAPID token does not decode: {e}")
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise Refused(401, "VAPID token is not ES256")
    if header.get("typ", "JWT") != "JWT":
        raise Refused(401, "VAPID token typ is not JWT")
    if len(signature) != 64:  # JOSE r || s, not DER
        raise Refused(401, f"VAPID signature is {len(signature)} bytes, not 64 (r || s)")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, f"{parts[0]}.{parts[1]}".encode("ascii"),
                          ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Refused(401, "VAPID signature does not verify with k")
    if not isinstance(claims, dict):
        raise Refused(401, "VAPID claims are not an object")
    if claims.get("aud") != audience:
        raise Refused(401, f"VAPID aud {claims.get('aud')!r} is not {audience!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise Refused(401, "VAPID exp is not an integer")
    if exp <= now:
        raise Refused(401, "VAPID token expired")
    if exp > now + MAX_VAPID_LIFETIME:
        raise Refused(401, "VAPID exp is more than 24 hours ahead")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not (sub.startswith("mailto:") or sub.startswith("https:")):
        raise Refused(401, "VAPID sub is not a mailto: or https: URI")
    return claims


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt_aes128gcm(body: bytes, private_key, public_point: bytes, auth: bytes) -> bytes:
    """RFC 8291 over RFC 8188, as the user agent decrypts; raises ValueError."""
    if len(body) < 21:
        raise ValueError("body shorter than the aes128gcm header")
    salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    if rs < 18:
        raise ValueError(f"record size {rs} is too small")
    if idlen != 65 or len(body) < 21 + idlen:
        raise ValueError(f"keyid is {idlen} bytes, not a 65-byte P-256 key")
    sender_point = body[21:21 + idlen]
    sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_point)
    ecdh_secret = private_key.exchange(ec.ECDH(), sender)
    ikm = hkdf(auth, ecdh_secret, b"WebPush: info\x00" + public_point + sender_point, 32)
    cek = hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    base_nonce = hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    records = body[21 + idlen:]
    if not records:
        raise ValueError("no record")
    plaintext = b""
    seq = 0
    while records:
        record, records = records[:rs], records[rs:]
        if len(record) <= 16:
            raise ValueError("record shorter than its tag")
        nonce = (int.from_bytes(base_nonce, "big") ^ seq).to_bytes(12, "big")
        try:
            padded = AESGCM(cek).decrypt(nonce, record, None)
        except InvalidTag:
            raise ValueError(f"record {seq} does not decrypt (wrong keys or tampered)")
        content = padded.rstrip(b"\x00")
        last = not records
        if not content or content[-1] != (2 if last else 1):
            raise ValueError(f"record {seq} has a wrong padding delimiter")
        if not last and len(record) != rs:
            raise ValueError(f"record {seq} is not the last but is short")
        plaintext += content[:-1]
        seq += 1
    return plaintext


class Subscription:
    def __init__(self, sub_id: str):
        self.id = sub_id
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.public_point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        self.auth = os.urandom(16)
        self.gone_status = None
        self.messages = []
        self.attempts = []


class PushService(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int):
        super().__init__(("127.0.0.1", port), Handler)
        self.lock = threading.Lock()
        self.subscriptions = {}
        self.next_id = 0
        self.next_message = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: PushService
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("push_service: " + (fmt % args) + "\n")

    def reply(self, status: int, payload=None, headers=None):
        body = b"" if payload is None else (
            payload if isinstance(payload, bytes) else
            json.dumps(payload).encode("utf-8"))
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if payload is not None and not isinstance(payload, bytes):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise Refused(411, "send the body with a Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise Refused(400, "Content-Length is not a number")
        if length > limit:
            # Drop a moderately large body so the connection stays usable; close on a huge one.
            if length <= 1 << 20:
                self.rfile.read(length)
            else:
                self.close_connection = True
            raise Refused(413, f"body of {length} bytes is over {limit}")
        return self.rfile.read(length)

    def subscription(self, sub_id):
        with self.server.lock:
            return self.server.subscriptions.get(sub_id)

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path in ("/_control/messages", "/_control/attempts"):
            sub = self.subscription((query.get("id") or [""])[0])
            if sub is None:
                return self.reply(404, {"error": "unknown subscription id"})
            with self.server.lock:
                items = list(sub.messages if url.path.endswith("messages") else sub.attempts)
            return self.reply(200, items)
        self.reply(404, {"error": "no such path"})

    def do_POST(self):
        url = urlsplit(self.path)
        if not url.path.startswith("/push/"):
            try:
                return self.control(url)
            except Refused as refused:
                return self.reply(refused.status, {"error": refused.reason})
        return self.push(url.path[len("/push/"):])

    def control(self, url):
        if url.path == "/_control/subscribe":
            self.read_body(1 << 16)
            with self.server.lock:
                self.server.next_id += 1
                sub = Subscription(f"s{self.server.next_id}")
                self.server.subscriptions[sub.id] = sub
            return self.reply(201, {
                "id": sub.id,
                "endpoint": f"{self.server.origin}/push/{sub.id}",
                "expirationTime": None,
                "keys": {"p256dh": b64url(sub.public_point), "auth": b64url(sub.auth)},
            })
        if url.path == "/_control/gone":
            try:
                request = json.loads(self.read_body(1 << 16) or b"{}")
                status = int(request.get("status", 410))
            except (ValueError, AttributeError, TypeError):
                return self.reply(400, {"error": "expected {\"id\", \"status\"}"})
            if status not in (404, 410):
                return self.reply(400, {"error": "status must be 404 or 410"})
            sub = self.subscription(str(request.get("id")))
            if sub is None:
                return self.reply(404, {"error": "unknown subscription id"})
            with self.server.lock:
                sub.gone_status = status
            return self.reply(200, {"id": sub.id, "status": status})
        self.reply(404, {"error": "no such path"})

    def push(self, sub_id: str):
        now = time.time()
        sub = self.subscription(sub_id)
        try:
            body = self.read_body(MAX_BODY)
            if sub is None:
                raise Refused(404, "unknown subscription")
            if sub.gone_status is not None:
                raise Refused(sub.gone_status, "subscription is gone (scripted)")
            check_vapid(self.headers.get("Authorization", ""), self.server.origin, now)
            ttl = self.headers.get("TTL")
            if ttl is None or not re.fullmatch(r"[0-9]{1,10}", ttl.strip()):
                raise Refused(400, "TTL header missing or not a non-negative integer")
            topic = self.headers.get("Topic")
            if topic is not None and not TOPIC.fullmatch(topic):
                raise Refused(400, "Topic is not 1..32 base64url characters")
            urgency = self.headers.get("Urgency")
            if urgency is not None and urgency not in URGENCIES:
                raise Refused(400, f"Urgency {urgency!r} is not one of {sorted(URGENCIES)}")
            if (self.headers.get("Content-Encoding") or "").strip().lower() != "aes128gcm":
                raise Refused(400, "Content-Encoding is not aes128gcm")
            try:
                plaintext = decrypt_aes128gcm(body, sub.private_key, sub.public_point, sub.auth)
            except ValueError as e:
                raise Refused(400, f"body does not decrypt: {e}")
        except Refused as refused:
            if sub is not None:
                with self.server.lock:
                    sub.attempts.append({"status": refused.status, "reason": refused.reason,
                                         "received_at": now})
            self.log_message("refused %s: %d %s", sub_id, refused.status, refused.reason)
            return self.reply(refused.status, {"error": refused.reason})
        with self.server.lock:
            self.server.next_message += 1
            message_id = self.server.next_message
            sub.attempts.append({"status": 201, "reason": "accepted", "received_at": now})
            sub.messages.append({
                "headers": {name: value for name, value in self.headers.items()},
                "plaintext": plaintext.decode("utf-8", errors="replace"),
                "plaintext_base64": base64.b64encode(plaintext).decode("ascii"),
                "received_at": now,
            })
        self.reply(201, headers={"Location": f"{self.server.origin}/message/{message_id}"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    args = parser.parse_args()
    server = PushService(args.port)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
