"""Shared helpers for the deployment tests (tests/deploy/*_test.py): the container image, the
compose stack and the Kubernetes manifests, built and run for real with the Docker engine that
scripts/container-engine gives (and podman).

Python 3 standard library only. Each test is a script that ctest runs (label `deploy`); it exits 0
when every check passed, 1 with the failed check on stderr, 77 when the container tools are not
installed (scripts/install-deps --with-deploy).

Environment (set by tests/deploy/CMakeLists.txt):
  VMP3_SOURCE_DIR  the source tree (Dockerfile, compose.yaml, deploy/, scripts/)
  VMP3_BUILD_DIR   the build tree; the engine's state lives under BUILD_DIR/deploy/engine
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from script_support import CheckFailed, check, free_port, log, run_checks, scratch_dir  # noqa: E402,F401

SOURCE_DIR = os.environ.get("VMP3_SOURCE_DIR", "")
BUILD_DIR = os.environ.get("VMP3_BUILD_DIR", "")
SKIPPED = 77


def run_test(body):
    """Runs `body()` and turns its outcome into the exit status ctest reads."""
    if not SOURCE_DIR or not BUILD_DIR:
        print("VMP3_SOURCE_DIR and VMP3_BUILD_DIR must be set (run through ctest)", file=sys.stderr)
        sys.exit(2)
    run_checks(body)


def engine_dir():
    return os.path.join(BUILD_DIR, "deploy", "engine")


def script(name):
    return os.path.join(SOURCE_DIR, "scripts", name)


def run(args, check_rc=True, timeout=600, env=None, input_text=None, binary=False):
    """Runs a command with its output captured and `input_text` (or nothing) on its stdin; returns
    CompletedProcess (text, or bytes when `binary`). Fails the test with its output when it
    exits non-zero and check_rc is set."""
    result = subprocess.run(args, capture_output=True, text=not binary, timeout=timeout, env=env,
                            input=input_text if input_text is not None else "" if not binary
                            else b"")
    if check_rc and result.returncode != 0:
        raise CheckFailed(f"{' '.join(map(str, args))} exited {result.returncode}\n"
                          f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def parse_exports(text):
    """The KEY=VALUE pairs of `export KEY='VALUE'` lines, as the project's scripts print them
    (scripts/container-engine env, scripts/test-servers env)."""
    pairs = {}
    for line in text.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        pairs[key] = value.strip("'")
    return pairs


def link_names():
    """The names of the host's network interfaces now (as scripts/host-network records them)."""
    out = run(["ip", "-o", "link", "show"]).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line}


def engine_env():
    """The environment with DOCKER_HOST and VMP3_DOCKER of the running engine (the ctest fixture
    deploy.engine_start started or found it)."""
    result = run([script("container-engine"), "env", engine_dir()], check_rc=False)
    if result.returncode != 0:
        raise CheckFailed(f"no container engine: {result.stderr.strip()} "
                          "(the deploy.engine_start fixture starts it)")
    env = dict(os.environ)
    env.update(parse_exports(result.stdout))
    env["DOCKER_BUILDKIT"] = "1"
    return env


class Docker:
    """The docker client of the engine, for `docker(...)` calls."""

    def __init__(self):
        self.env = engine_env()
        self.client = self.env["VMP3_DOCKER"]

    def __call__(self, *args, check_rc=True, timeout=600, input_text=None):
        return run([self.client, *args], check_rc=check_rc, timeout=timeout, env=self.env,
                   input_text=input_text)

    def health(self, container):
        return self("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                    container).stdout.strip()


def require_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        print(f"not installed: {', '.join(missing)} (scripts/install-deps --with-deploy)",
              file=sys.stderr)
        sys.exit(SKIPPED)


def wait_until(what, predicate, timeout, interval=0.5):
    """Calls predicate() until it returns a true value (returned); fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, urllib.error.URLError, CheckFailed, ValueError) as e:
            last_error = e
        time.sleep(interval)
    raise CheckFailed(f"{what} within {timeout} s (last error: {last_error})")


def temp_dir(prefix):
    """A fresh directory under BUILD_DIR/deploy-tests, removed afterwards unless VMP3_KEEP_TEMP=1."""
    return scratch_dir(os.path.join(BUILD_DIR, "deploy-tests"), prefix)


# ---- Media -------------------------------------------------------------------------------------


def make_video(path, seconds, size="320x240"):
    """A video with a sine tone (H.264 + AAC in MP4), made by the ffmpeg CLI."""
    run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", path])
    return path


def decoded_seconds(path):
    """The duration of an MP3 as decoded (every frame through the decoder), not as its header says."""
    result = run(["ffmpeg", "-hide_banner", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1",
                  "-ar", "8000", "-"], binary=True)
    check(result.stderr.strip() == b"", f"decoding {path} printed errors: {result.stderr[-500:]!r}")
    return len(result.stdout) / 2 / 8000


# ---- The HTTP API ------------------------------------------------------------------------------


class ApiError(CheckFailed):
    def __init__(self, status, body, what):
        super().__init__(f"{what}: HTTP {status}: {body[:500]!r}")


class Api:
    """vmp3's HTTP API at `base` (the gateway or a single container), as docs/api.md describes."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.token = None

    def request(self, method, path, body=None, headers=None, timeout=60):
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers=dict(headers or {}))
        if self.token and "Authorization" not in request.headers:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, e.read(), f"{method} {path}") from None

    def json(self, method, path, payload=None, headers=None):
        body = None if payload is None else json.dumps(payload).encode()
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        _, _, data = self.request(method, path, body, h)
        return json.loads(data) if data else None

    def sign_up(self, username=None, password="correct horse battery staple"):
        """Registers a fresh user and logs in (HTTP Basic -> bearer token)."""
        username = username or "u" + uuid.uuid4().hex[:12]
        self.json("POST", "/v1/auth/register", {"username": username, "password": password})
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        token = self.json("POST", "/v1/auth/login", headers={"Authorization": f"Basic {basic}"})
        check(token.get("token_type") == "Bearer", f"login answered {token}")
        self.token = token["access_token"]
        return username

    def upload(self, path, quality="V2"):
        """POST /v1/jobs with a multipart body; returns the job (202)."""
        boundary = "vmp3-" + uuid.uuid4().hex
        with open(path, "rb") as f:
            data = f.read()
        name = os.path.basename(path)
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"quality\"\r\n\r\n"
                f"{quality}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        body += data + f"\r\n--{boundary}--\r\n".encode()
        status, _, reply = self.request(
            "POST", "/v1/jobs", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        check(status == 202, f"upload answered {status}")
        return json.loads(reply)

    def job(self, job_id):
        return self.json("GET", f"/v1/jobs/{job_id}")

    def events_until_end(self, job_id, timeout=300):
        """Reads GET /v1/jobs/{id}/events (SSE) until a status event says the job ended; returns
        the (event, data) pairs seen."""
        request = urllib.request.Request(f"{self.base}/v1/jobs/{job_id}/events",
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Accept": "text/event-stream"})
        seen = []
        deadline = time.monotonic() + timeout
        with urllib.request.urlopen(request, timeout=timeout) as response:
            check(response.headers.get("Content-Type", "").startswith("text/event-stream"),
                  f"events Content-Type is {response.headers.get('Content-Type')}")
            event, data = "message", []
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    payload = json.loads("\n".join(data))
                    seen.append((event, payload))
                    if event == "status" and payload.get("status") in ("done", "failed",
                                                                        "cancelled"):
                        return seen
                    event, data = "message", []
                check(time.monotonic() < deadline, f"job {job_id} did not end in {timeout} s")
        raise CheckFailed(f"the event stream of {job_id} closed before the job ended: {seen[-3:]}")

    def download(self, job_id, path):
        status, headers, data = self.request("GET", f"/v1/jobs/{job_id}/mp3", timeout=120)
        check(status == 200, f"download answered {status}")
        check(headers.get("Content-Type") == "audio/mpeg",
              f"download Content-Type {headers.get('Content-Type')}")
        with open(path, "wb") as f:
            f.write(data)
        return path


def convert_through(api, workdir, seconds=6, on_signed_up=None):
    """One whole conversion through `api` as a fresh user: upload a generated video, follow its
    events (SSE) to `done`, download the MP3 and decode it to the source's length.
    `on_signed_up(api)` runs between sign-up and upload (to register a webhook, say)."""
    api.sign_up()
    if on_signed_up:
        on_signed_up(api)
    video = make_video(os.path.join(workdir, f"clip-{uuid.uuid4().hex[:6]}.mp4"), seconds)
    job = api.upload(video)
    events = api.events_until_end(job["id"])
    check(events[-1][1].get("status") == "done", f"job ended {events[-1]}")
    mp3 = api.download(job["id"], os.path.join(workdir, job["id"] + ".mp3"))
    length = decoded_seconds(mp3)
    check(abs(length - seconds) < 0.1, f"the MP3 decodes to {length:.3f} s, the source is {seconds} s")
    return job


# ---- Webhooks -----------------------------------------------------------------------------------


def verify_standard_webhook(secret, headers, body, tolerance=300):
    """Checks a delivery as a receiver following the Standard Webhooks specification would, with
    this code's own HMAC, not vmp3's: `webhook-signature` holds a `v1,<base64 HMAC-SHA256 of
    "{webhook-id}.{webhook-timestamp}.{body}">` keyed by the base64-decoded part of the
    `whsec_` secret, and the timestamp is within `tolerance` seconds of now. Returns the
    parsed payload."""
    check(secret.startswith("whsec_"), f"the endpoint's secret {secret[:10]}... is not whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    headers = {k.lower(): v for k, v in headers.items()}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        check(headers.get(name), f"the delivery has no {name} header: {headers}")
    timestamp = int(headers["webhook-timestamp"])
    check(abs(time.time() - timestamp) <= tolerance,
          f"webhook-timestamp {timestamp} is {time.time() - timestamp:.0f} s from now")
    signed = f"{headers['webhook-id']}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split()
               if s.startswith("v1,")]
    check(any(hmac.compare_digest(expected, o) for o in offered),
          f"no v1 signature of {headers['webhook-signature']!r} matches the body")
    return json.loads(body)


class WebhookReceiver:
    """A webhook receiver on 127.0.0.1 (threads of this test): answers 204 to every POST and keeps
    each delivery (headers, body). A context manager; its `url` is http://127.0.0.1:PORT/hook."""

    def __init__(self):
        self.deliveries = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.deliveries.append((self.path, dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        return False

    def wait_for(self, secret, event_type, job_id, timeout):
        """The first delivery of `event_type` about job `job_id`, its signature verified: (headers,
        payload)."""
        def find():
            with self.lock:
                seen = list(self.deliveries)
            for delivery in seen:
                payload = json.loads(delivery[2])
                if payload.get("type") == event_type and payload.get("data", {}).get("id") == job_id:
                    return delivery
            return None
        # Found first, verified after: a bad signature fails at once instead of being waited out.
        path, headers, body = wait_until(f"a {event_type} delivery for job {job_id}", find,
                                         timeout, interval=0.2)
        check(path == "/hook", f"delivered to {path}, not /hook")
        return headers, verify_standard_webhook(secret, headers, body)
