#!/usr/bin/env python3
"""Soak test of the distributed deployment, with chaos and strict accounting.

Runs by bench/soak.sh (read its header for settings). Standard library only.

What it does, in order:
  1. Generates its inputs once with the ffmpeg CLI into SOAK_DIR/media-v1 (short clips, 30-120 s
     files, bad inputs) and measures each good input's audio duration by decoding it.
  2. Starts RabbitMQ, Redis and Ceph RGW (scripts/test-servers start-fresh SOAK_DIR/servers), every
     vmp3 role as its own process (auth, upload, metadata, download, notifier, two converters) on a
     prefix of its own, and nginx (deploy/nginx/vmp3.conf.template) as the gateway the clients go
     through.
  3. Load: CLIENTS threads, one user each, submit JOBS uploads spread over LOAD seconds (~10 % bad
     inputs, some deleted mid-flight, some status reads and downloads), retrying 502/503/504/429
     and connection errors with backoff that honours Retry-After.
     Chaos meanwhile: kill -9 of a random role every ~KILL_EVERY s (restarted at once on the same
     port with the same arguments), RabbitMQ and Redis restarted once each, RGW stopped for 15 s.
  4. Drain: waits (at most DRAIN seconds) until every job has ended.
  5. Accounting (each line PASS or FAIL; exit 1 if any FAIL): final states via the API, error codes
     of bad inputs, every MP3 downloaded and decoded to the input's duration, deleted jobs gone
     with their objects, no object in the bucket that no job owns (two planted at the start
     must have been removed by the janitor), every user's usage counters match their jobs, no
     429, converter "done" log lines per job, process memory flat, no role died on its own.
  6. Stops everything it started, by PID, and writes bench/results/soak-<date>.md.
"""

import base64
import collections
import concurrent.futures
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name, default):
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


class Config:
    def __init__(self):
        self.short = os.environ.get("SOAK_SHORT", "") not in ("", "0")
        self.vmp3 = Path(os.environ.get("VMP3", ROOT / "build" / "vmp3")).resolve()
        self.dir = Path(os.environ.get("SOAK_DIR", ROOT / "build" / "soak")).resolve()
        self.results_dir = Path(os.environ.get("SOAK_RESULTS_DIR", ROOT / "bench" / "results"))
        self.clients = env_int("SOAK_CLIENTS", 20)
        self.jobs = env_int("SOAK_JOBS", 60 if self.short else 520)
        self.load_seconds = env_float("SOAK_LOAD_SECONDS", 75 if self.short else 420)
        self.kill_every = env_float("SOAK_KILL_EVERY", 20)
        self.drain_seconds = env_float("SOAK_DRAIN_SECONDS", 180)
        self.rgw_outage_seconds = env_float("SOAK_RGW_OUTAGE_SECONDS", 15)
        self.seed = env_int("SOAK_SEED", int(time.time()))
        self.janitor_interval = 10
        self.orphan_grace = 60  # the smallest --orphan-grace the metadata role accepts
        # Per-user limits (see start_everything): the service's defaults, stated here.
        self.rate_limit, self.rate_burst = 50, 200
        self.max_active_jobs = 50
        self.max_user_bytes = 1 << 30
        self.duration_tolerance = 0.05  # seconds between an MP3's decoded length and its input's
        self.rss_growth_limit = 0.50  # flagged past +50 % between first and last quarter...
        self.rss_growth_floor_mb = 4.0  # ...and more than this many MB (noise on small processes)
        self.sample_every = 2.0  # seconds between VmRSS samples


CFG = Config()


class Interrupted(Exception):
    pass


def now():
    return time.time()


LOG_LOCK = threading.Lock()
LOG_FILE = None
T0 = now()


def log(msg):
    line = f"[soak {now() - T0:7.1f}s] {msg}"
    with LOG_LOCK:
        print(line, flush=True)
        if LOG_FILE:
            LOG_FILE.write(line + "\n")
            LOG_FILE.flush()


def run(argv, timeout=300, check=True, env=None, **kw):
    if "input" not in kw:
        kw["stdin"] = subprocess.DEVNULL
    p = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({p.returncode}): "
                           f"{p.stdout.decode(errors='replace')[-2000:]}"
                           f"{p.stderr.decode(errors='replace')[-2000:]}")
    return p


def free_ports(n):
    """n distinct free ports on 127.0.0.1 below the kernel's ephemeral range (as scripts/test-servers
    picks them): a role restarted on its port must not find it taken by some outgoing connection."""
    found = []
    while len(found) < n:
        port = random.randrange(20000, 32000)
        if port in found:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
    return found


def percentile(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# ---------------------------------------------------------------------------------------------
# Inputs, generated once by the ffmpeg CLI.

MEDIA_VERSION = "media-v1"


def tones(seconds, rate=48000, layout="stereo"):
    exprs = {
        "mono": "0.3*sin(2*PI*440*t)",
        "stereo": "0.3*sin(2*PI*440*t)|0.3*sin(2*PI*660*t)",
        "5.1": "|".join(f"0.2*sin(2*PI*{f}*t)" for f in (330, 440, 550, 110, 660, 770)),
    }
    return ["-f", "lavfi", "-i",
            f"aevalsrc={exprs[layout]}:s={rate}:d={seconds}:c={layout}"]


H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
MPEG4 = ["-c:v", "mpeg4", "-q:v", "10"]
VP8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "100k"]


def av(seconds, vcodec, acodec, rate=48000, layout="stereo"):
    return (["-f", "lavfi", "-i", f"testsrc2=s=160x120:r=10:d={seconds}"] + tones(seconds, rate, layout)
            + ["-map", "0:v", "-map", "1:a"] + vcodec + acodec)


AAC = ["-c:a", "aac", "-b:a", "96k"]
OPUS = ["-c:a", "libopus", "-b:a", "64k"]

# name -> (kind, ffmpeg input+codec args); kind: short | long
GOOD = {
    "short-2s.mp4": ("short", av(2, H264, AAC)),
    "short-3s.mkv": ("short", av(3, H264, OPUS)),
    "short-4s.webm": ("short", av(4, VP8, ["-c:a", "libvorbis", "-q:a", "3"])),
    "short-5s.mov": ("short", av(5, MPEG4, AAC, rate=44100)),
    "short-3s.wav": ("short", tones(3, 44100) + ["-c:a", "pcm_s16le"]),
    "short-5s.mp3": ("short", tones(5, 44100) + ["-c:a", "libmp3lame", "-b:a", "128k"]),
    "short-6s-96k.flac": ("short", tones(6, 96000) + ["-c:a", "flac"]),
    "short-7s-mono.m4a": ("short", tones(7, 44100, "mono") + AAC),
    "short-8s.avi": ("short", av(8, MPEG4, ["-c:a", "libmp3lame", "-b:a", "192k"])),
    "short-4s-51.mkv": ("short", av(4, H264, ["-c:a", "ac3", "-b:a", "384k"], layout="5.1")),
    "long-30s.mp4": ("long", av(30, H264, AAC)),
    "long-45s.flac": ("long", tones(45, 44100) + ["-c:a", "flac"]),
    "long-60s.mkv": ("long", av(60, H264, OPUS)),
    "long-90s.mp4": ("long", av(90, H264, AAC, rate=44100)),
    "long-120s.mp4": ("long", av(120, H264, AAC)),
}

# name -> (error codes the job may end with; None: the upload itself is refused with 400)
BAD = {
    "bad-random.mp4": {"not_media"},
    "bad-html.mp4": {"not_media"},
    "bad-truncated.mp4": {"corrupt_media", "not_media"},
    "bad-noaudio.mp4": {"no_audio_stream"},
    "bad-empty.mp4": None,
}
# Failures that say a limit was passed (not the input's fault; there should be none).
LIMIT_CODES = {"media_too_long", "output_too_large", "too_large", "quota_exceeded", "rate_limited"}

HTML = (b"<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>404 Not Found"
        b"</title></head>\n<body>\n<h1>Not Found</h1>\n<p>The requested URL /videos/holiday.mp4 was"
        b" not found on this server.</p>\n</body>\n</html>\n")


def ffmpeg(args, out):
    tmp = out.with_name(out.name + ".tmp" + out.suffix)
    run(["ffmpeg", "-nostdin", "-v", "error", "-y"] + args + [str(tmp)], timeout=600)
    tmp.replace(out)


def decoded_seconds(path):
    """Decodes the first audio stream with the ffmpeg CLI; (seconds, error text)."""
    probe = run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                 "stream=sample_rate", "-of", "csv=p=0", str(path)], check=False, timeout=120)
    rate_text = probe.stdout.decode().strip()
    if probe.returncode != 0 or not rate_text.isdigit():
        return None, f"ffprobe: {probe.stderr.decode(errors='replace').strip() or 'no audio'}"
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
             "-f", "s16le", "-"], check=False, timeout=300)
    errors = p.stderr.decode(errors="replace").strip()
    if p.returncode != 0:
        errors = errors or f"ffmpeg exited {p.returncode}"
    return len(p.stdout) / 2 / int(rate_text), errors


def prepare_media():
    media = CFG.dir / MEDIA_VERSION
    media.mkdir(parents=True, exist_ok=True)
    made = 0
    for name, (_, args) in GOOD.items():
        if not (media / name).exists():
            ffmpeg(args, media / name)
            made += 1
    bad = {
        "bad-random.mp4": lambda: random.Random(0x766D7033).randbytes(64 * 1024),
        "bad-html.mp4": lambda: HTML,
        "bad-empty.mp4": lambda: b"",
    }
    for name, make in bad.items():
        if not (media / name).exists():
            (media / name).write_bytes(make())
            made += 1
    if not (media / "bad-noaudio.mp4").exists():
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=3"] + H264 + ["-an"],
               media / "bad-noaudio.mp4")
        made += 1
    if not (media / "bad-truncated.mp4").exists():
        whole = media / "whole-5s.mp4"
        ffmpeg(av(5, H264, AAC), whole)
        data = whole.read_bytes()
        keep = len(data) * 3 // 10
        if data.find(b"moov") < keep:
            raise RuntimeError("bad-truncated.mp4: the moov atom is not at the end")
        (media / "bad-truncated.mp4").write_bytes(data[:keep])
        whole.unlink()
        made += 1
    durations_file = media / "durations.json"
    durations = json.loads(durations_file.read_text()) if durations_file.exists() else {}
    for name in GOOD:
        if name not in durations:
            seconds, errors = decoded_seconds(media / name)
            if seconds is None or errors:
                raise RuntimeError(f"{name}: the generated input does not decode: {errors}")
            durations[name] = seconds
    durations_file.write_text(json.dumps(durations, indent=1, sort_keys=True))
    log(f"inputs in {media} ({made} generated now)")
    return media, durations


# ---------------------------------------------------------------------------------------------
# HTTP through the gateway.

class Reply:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def http_call(port, method, path, body=None, headers=None, timeout=60.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    except (OSError, http.client.HTTPException) as e:
        return Reply(0, {}, f"{type(e).__name__}: {e}".encode())
    finally:
        conn.close()


RETRYABLE = {0, 429, 502, 503, 504}


class StatusLog:
    """Every response the clients saw: (time, operation, status)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []

    def add(self, op, status):
        with self.lock:
            self.entries.append((now(), op, status))


STATUSES = StatusLog()


def call_with_retries(port, op, make_request, stop, budget=120.0, max_tries=12):
    """Calls until a non-retryable answer, the budget or max_tries; (reply, tries)."""
    started = now()
    tries = 0
    while True:
        method, path, body, headers, timeout = make_request()
        reply = http_call(port, method, path, body, headers, timeout)
        tries += 1
        STATUSES.add(op, reply.status)
        if reply.status not in RETRYABLE or tries >= max_tries or stop.is_set():
            return reply, tries
        wait = min(8.0, 0.5 * 2 ** (tries - 1)) * random.uniform(0.8, 1.2)
        retry_after = reply.headers.get("retry-after", "")
        if retry_after.isdigit():
            wait = max(wait, float(retry_after))
        if now() + wait - started > budget:
            return reply, tries
        time.sleep(wait)


# ---------------------------------------------------------------------------------------------
# Processes.

class Instance:
    """One process of a role: its PID, lifetime and VmRSS samples (time, kB)."""

    def __init__(self, role, proc):
        self.role, self.proc, self.pid = role, proc, proc.pid
        self.started, self.ended, self.how_ended = now(), None, None
        self.samples = []


class Role:
    def __init__(self, name, roles_flag, port, args, log_path, env):
        self.name, self.roles_flag, self.port = name, roles_flag, port
        self.args, self.log_path, self.env = args, log_path, env
        self.lock = threading.Lock()
        self.current = None
        self.instances = []
        self.unexpected_exits = []  # (time, pid, exit code)
        self.restart_times = []  # seconds from kill to healthy

    def argv(self):
        return [str(CFG.vmp3), "serve", "--roles", self.roles_flag,
                "--listen", f"127.0.0.1:{self.port}"] + self.args

    def spawn(self):
        with open(self.log_path, "ab") as out:
            out.write(f"=== soak: starting {' '.join(self.argv())}\n".encode())
            out.flush()
            log_offset = out.tell()
            proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
        inst = Instance(self, proc)
        inst.log_offset = log_offset
        self.instances.append(inst)
        self.current = inst
        with open(CFG_RUN_PIDS, "a") as f:
            f.write(f"{proc.pid} {self.name}\n")
        return inst

    def healthy(self):
        return http_call(self.port, "GET", "/healthz", timeout=2).status == 200

    def start(self, timeout=60.0):
        """Starts a process and waits until it answers /healthz; retries when it exits."""
        deadline = now() + timeout
        while True:
            inst = self.spawn()
            while now() < deadline:
                if inst.proc.poll() is not None:
                    break
                if self.healthy():
                    return inst
                time.sleep(0.1)
            code = inst.proc.poll()
            if code is None:
                raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s; "
                                   f"see {self.log_path}")
            inst.ended, inst.how_ended = now(), f"exited {code} at start"
            if now() >= deadline:
                raise RuntimeError(f"{self.name} exits at start ({code}); see {self.log_path}")
            time.sleep(1)

    def kill_and_restart(self):
        with self.lock:
            inst = self.current
            killed_at = now()
            inst.proc.send_signal(signal.SIGKILL)
            inst.proc.wait()
            inst.ended, inst.how_ended = now(), "kill -9"
            self.start()
            self.restart_times.append(now() - killed_at)
            return inst.pid, self.current.pid

    def check_alive(self):
        """Restarts the role if it exited on its own; records that. Skips a role the chaos is
        restarting (the sampler must not wait for it)."""
        if not self.lock.acquire(blocking=False):
            return
        try:
            inst = self.current
            if inst is None or inst.ended is not None:
                return
            code = inst.proc.poll()
            if code is None:
                return
            inst.ended, inst.how_ended = now(), f"exited on its own ({code})"
            self.unexpected_exits.append((now(), inst.pid, code))
            log(f"!! {self.name} (pid {inst.pid}) exited on its own with {code}; restarting")
            try:
                self.start()
            except RuntimeError as e:
                log(f"!! {self.name}: restart failed: {e}")
        finally:
            self.lock.release()

    def stop(self, grace=25.0):
        with self.lock:
            inst = self.current
            if inst is None or inst.ended is not None:
                return
            if inst.proc.poll() is None:
                inst.proc.send_signal(signal.SIGTERM)
                try:
                    inst.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    inst.proc.kill()
                    inst.proc.wait()
            inst.ended, inst.how_ended = now(), "stopped"


CFG_RUN_PIDS = None  # the run's pids.txt: every process started, for an operator after a crash


class Servers:
    """The RabbitMQ, Redis and RGW of SOAK_DIR/servers (scripts/test-servers)."""

    def __init__(self, run_dir):
        self.dir = CFG.dir / "servers"
        self.script = ROOT / "scripts" / "test-servers"
        self.started = False
        self.log_dir = run_dir / "logs"

    def start(self):
        self.started = True
        run([str(self.script), "start-fresh", str(self.dir)], timeout=600)
        env = {}
        for line in (self.dir / "servers.env").read_text().splitlines():
            key, _, value = line.partition("=")
            if key:
                env[key] = value
        self.ports = {}
        for line in (self.dir / "ports.env").read_text().splitlines():
            key, _, value = line.partition("=")
            if key:
                self.ports[key] = value
        return env

    def action(self, name, act):
        """scripts/servers/NAME.sh ACT with this DIR's ports (as tests/integration/faults_test)."""
        script = str(ROOT / "scripts" / "servers" / f"{name}.sh")
        state = str(self.dir / name)
        env = dict(os.environ)
        if name == "redis":
            argv = [script, act, state, self.ports["REDIS_PORT"]]
        elif name == "rabbitmq":
            argv = [script, act, state, self.ports["AMQP_PORT"], self.ports["AMQP_DIST_PORT"],
                    self.ports["EPMD_PORT"]]
        else:
            argv = [script, act, state, self.ports["RGW_PORT"]]
            env["MON_PORT_V2"] = self.ports["MON_PORT_V2"]
            env["MON_PORT_V1"] = self.ports["MON_PORT_V1"]
        started = now()
        p = run(argv, timeout=300, check=False, env=env)
        with open(self.log_dir / f"server-{name}.log", "ab") as f:
            f.write(f"=== {act} at {started - T0:.1f}s: exit {p.returncode}\n".encode())
            f.write(p.stdout + p.stderr)
        if p.returncode != 0:
            raise RuntimeError(f"{name} {act} failed ({p.returncode}); see "
                               f"{self.log_dir}/server-{name}.log")
        return now() - started

    def stop(self):
        if self.started:
            run([str(self.script), "stop", str(self.dir)], timeout=600, check=False)
            self.started = False


# ---------------------------------------------------------------------------------------------
# The plan: what each submission uploads, and which are deleted.

class Submission:
    def __init__(self, index, media, mode, options, delete_after):
        self.index, self.media, self.mode = index, media, mode
        self.options, self.delete_after = options, delete_after
        self.client = None
        self.tries = 0
        self.statuses = []
        self.job_id = None
        self.accepted_at = None
        self.refused = None  # final non-202 status (after retries)
        self.refusal_body = b""
        self.delete_status = None
        self.delete_tries = 0
        self.deleted_at = None

    @property
    def bad(self):
        return self.media in BAD


def make_plan(rng):
    n = CFG.jobs
    n_bad = max(len(BAD), round(n * 0.10))
    long_names = [m for m, (kind, _) in GOOD.items() if kind == "long"]
    short_names = [m for m, (kind, _) in GOOD.items() if kind == "short"]
    n_long = max(3, round(n * 0.10))
    medias = [list(BAD)[i % len(BAD)] for i in range(n_bad)]
    medias += [long_names[i % len(long_names)] for i in range(n_long)]
    medias += [short_names[i % len(short_names)] for i in range(n - n_bad - n_long)]
    rng.shuffle(medias)
    plan = []
    for i, media in enumerate(medias):
        mode = rng.choice(["raw", "multipart"])
        options = {}
        r = rng.random()
        if r < 0.10:
            options["quality"] = rng.choice(["V0", "V5", "V9"])
        elif r < 0.20:
            options["bitrate"] = str(rng.choice([96, 128, 192, 320]))
        plan.append(Submission(i, media, mode, options, None))
    # ~6 % deleted, long jobs more often (they are more likely to be converting when deleted).
    n_delete = max(3, round(n * 0.06))
    weights = [4 if GOOD.get(s.media, ("short",))[0] == "long" else 1 for s in plan]
    chosen = set()
    while len(chosen) < n_delete:
        chosen.add(rng.choices(range(n), weights)[0])
    for i in chosen:
        plan[i].delete_after = rng.uniform(0.0, 3.0)
    return plan


def multipart_body(filename, data, options):
    boundary = "soak" + base64.b32encode(os.urandom(10)).decode().lower()
    parts = []
    for key, value in options.items():
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n"
                     f"{value}\r\n".encode())
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                 .encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# ---------------------------------------------------------------------------------------------
# The soak.

class Soak:
    def __init__(self):
        self.stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M")
        self.prefix = "soak-" + datetime.datetime.now().strftime("%Y%m%d%H%M%S")
        self.run_dir = CFG.dir / f"run-{self.stamp}"
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        (self.run_dir / "logs").mkdir(parents=True)
        global LOG_FILE, CFG_RUN_PIDS
        LOG_FILE = open(self.run_dir / "soak.log", "w")
        CFG_RUN_PIDS = self.run_dir / "pids.txt"
        self.rng = random.Random(CFG.seed)
        self.stop = threading.Event()  # ends clients, chaos and the sampler
        self.chaos_stop = threading.Event()
        self.roles = {}
        self.nginx = None
        self.servers = Servers(self.run_dir)
        self.events = []  # chaos: dicts with what, start, end, detail
        self.users = []  # (username, password, token holder)
        self.plan = []
        self.failures = []  # findings for the report
        self.load_start = self.load_end = self.chaos_end = None
        self.run_end = None
        self.has_orphan_sweep = False
        self.notes = []
        self.interrupted = set()  # jobs a converter was converting when the chaos killed it
        self.planted = []  # objects no job owns, stored at the start (plant_orphans)

    # --- setup ---------------------------------------------------------------------------------
    def start_everything(self, s3env):
        help_text = run([str(CFG.vmp3), "serve", "--help"]).stdout.decode()
        self.has_orphan_sweep = "--orphan-grace" in help_text
        env = dict(os.environ)
        env.update(s3env)
        s3 = s3env["VMP3_TEST_S3_URL"]
        q = s3.index("?")
        self.s3_url = s3[:q] + "/" + self.prefix + s3[q:]
        self.bucket = s3[5:q]
        self.endpoint = re.search(r"endpoint=([^&]+)", s3).group(1)
        self.s3_keys = (s3env["AWS_ACCESS_KEY_ID"], s3env["AWS_SECRET_ACCESS_KEY"])
        common = ["--storage", self.s3_url,
                  "--queue", s3env["VMP3_TEST_AMQP_URL"] + "?prefix=" + self.prefix,
                  "--metadata", s3env["VMP3_TEST_REDIS_URL"] + "?prefix=" + self.prefix,
                  "--data-dir", str(self.run_dir / "data"), "--log-level", "info",
                  # The per-user limits, set explicitly above what the soak needs so they stay
                  # on (their state in Redis lives through the chaos, and the usage check reads
                  # it back) but never trip: a client submits one job every ~16 s and makes
                  # ~1 request/s at most, so it has a few unfinished jobs at once (tens while
                  # an outage holds the converters back) and stores < 50 MB. A 429 fails a check.
                  "--rate-limit", str(CFG.rate_limit), "--rate-burst", str(CFG.rate_burst),
                  "--max-active-jobs", str(CFG.max_active_jobs),
                  "--max-user-bytes", str(CFG.max_user_bytes)]
        names = ["auth", "upload", "metadata", "download", "notifier", "converter1", "converter2"]
        ports = dict(zip(names, free_ports(len(names))))
        logs = self.run_dir / "logs"
        auth_url = ["--auth-url", f"http://127.0.0.1:{ports['auth']}"]
        janitor = ["--janitor-interval", str(CFG.janitor_interval)]
        if self.has_orphan_sweep:
            janitor += ["--orphan-grace", str(CFG.orphan_grace)]
        specs = {
            "auth": ("auth", []),
            "upload": ("upload", auth_url),
            "metadata": ("metadata", auth_url + janitor),
            "download": ("download", auth_url),
            # Links in webhook payloads point at the gateway, whose port is picked later.
            "notifier": ("notifier", auth_url),
            "converter1": ("converter", auth_url + ["--workers", "1"]),
            "converter2": ("converter", auth_url + ["--workers", "1"]),
        }
        for name in names:
            flag, extra = specs[name]
            self.roles[name] = Role(name, flag, ports[name], common + extra,
                                    logs / f"{name}.log", env)
        for name in names:
            self.roles[name].start()
        log("roles up: " + ", ".join(f"{n} :{r.port} (pid {r.current.pid})"
                                     for n, r in self.roles.items()))
        self.start_nginx()

    def start_nginx(self):
        d = self.run_dir / "nginx"
        d.mkdir()
        routes = (ROOT / "deploy" / "nginx" / "vmp3.conf.template").read_text()
        # The ${VMP3_*} placeholders, filled as the nginx image's envsubst fills them.
        for role in ("auth", "upload", "metadata", "download", "notifier"):
            routes = routes.replace(f"${{VMP3_{role.upper()}_UPSTREAM}}",
                                    f"127.0.0.1:{self.roles[role].port}")
        nginx = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"
        for attempt in range(5):
            port = free_ports(1)[0]
            (d / "routes.conf").write_text(
                routes.replace("${VMP3_GATEWAY_LISTEN}", f"127.0.0.1:{port}"))
            # One foreground process (no master/worker split): one PID that this script owns.
            (d / "nginx.conf").write_text(f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  include {d}/routes.conf;
}}
""")
            out = open(self.run_dir / "logs" / "nginx.out", "ab")
            proc = subprocess.Popen([nginx, "-e", str(d / "error.log"), "-p", str(d), "-c",
                                     str(d / "nginx.conf")], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            out.close()
            with open(CFG_RUN_PIDS, "a") as f:
                f.write(f"{proc.pid} nginx\n")
            deadline = now() + 10
            while now() < deadline and proc.poll() is None:
                pid_file = d / "nginx.pid"
                if pid_file.exists() and pid_file.read_text().strip() == str(proc.pid) and \
                        http_call(port, "GET", "/healthz", timeout=2).status == 200:
                    self.nginx, self.port = proc, port
                    log(f"gateway: nginx (pid {proc.pid}) on http://127.0.0.1:{port}/")
                    return
                time.sleep(0.1)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        raise RuntimeError(f"nginx did not start; see {d}/error.log")

    def sign_in_users(self):
        def one(i):
            name = f"{self.prefix}-c{i:02d}"
            password = "soak-password-" + base64.b32encode(os.urandom(5)).decode()
            body = json.dumps({"username": name, "password": password}).encode()
            r, _ = call_with_retries(self.port, "register", lambda: (
                "POST", "/v1/auth/register", body, {"Content-Type": "application/json"}, 30),
                self.stop)
            if r.status != 201:
                raise RuntimeError(f"register {name}: {r.status} {r.body[:300]!r}")
            user = {"name": name, "password": password, "token": None, "lock": threading.Lock()}
            self.login(user)
            return user
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            self.users = list(pool.map(one, range(CFG.clients)))
        log(f"{len(self.users)} users registered and signed in")

    def login(self, user):
        basic = base64.b64encode(f"{user['name']}:{user['password']}".encode()).decode()
        r, _ = call_with_retries(self.port, "login", lambda: (
            "POST", "/v1/auth/login", b"", {"Authorization": "Basic " + basic}, 30), self.stop)
        if r.status != 200:
            raise RuntimeError(f"login {user['name']}: {r.status} {r.body[:300]!r}")
        user["token"] = r.json()["access_token"]

    def authed(self, user, op, method, path, body=None, headers=None, timeout=60, budget=120):
        """A call with the user's token: retried, and signed in again once on a 401."""
        for attempt in range(2):
            token = user["token"]
            h = dict(headers or {})
            h["Authorization"] = "Bearer " + token
            r, tries = call_with_retries(self.port, op, lambda: (method, path, body, h, timeout),
                                         self.stop, budget=budget)
            if r.status != 401 or attempt == 1:
                return r, tries
            with user["lock"]:
                if user["token"] == token:
                    log(f"!! {op} got 401 for {user['name']}: signing in again "
                        f"({r.body[:200]!r})")
                    self.login(user)
        return r, tries

    # --- load ----------------------------------------------------------------------------------
    def client(self, c, media_bytes, next_index, lock):
        user = self.users[c]
        mine = []  # this client's accepted job ids
        rng = random.Random(CFG.seed * 1000 + c)
        while not self.stop.is_set():
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(self.plan):
                return
            s = self.plan[i]
            s.client = c
            due = self.load_start + i * CFG.load_seconds / len(self.plan)
            if due > now():
                time.sleep(due - now())
            data = media_bytes[s.media]
            if s.mode == "raw":
                query = urllib.parse.urlencode({"filename": s.media, **s.options})
                body, path = data, "/v1/jobs?" + query
                ctype = "application/octet-stream"
            else:
                body, ctype = multipart_body(s.media, data, s.options)
                path = "/v1/jobs"
            r, s.tries = self.authed(user, "upload", "POST", path, body,
                                     {"Content-Type": ctype}, timeout=60)
            if r.status == 202:
                s.job_id = r.json()["id"]
                s.accepted_at = now()
                mine.append(s.job_id)
            else:
                s.refused, s.refusal_body = r.status, r.body[:300]
                if not (s.media == "bad-empty.mp4" and r.status == 400):
                    log(f"!! upload {i} ({s.media}) refused after {s.tries} tries: {r.status} "
                        f"{r.body[:200]!r}")
            if s.job_id and s.delete_after is not None:
                time.sleep(s.delete_after)
                r, s.delete_tries = self.authed(user, "delete", "DELETE",
                                                f"/v1/jobs/{s.job_id}", timeout=30)
                s.delete_status = r.status
                s.deleted_at = now()
                if r.status not in (204, 404):
                    log(f"!! DELETE {s.job_id} gave up after {s.delete_tries} tries: {r.status}"
                        f" {r.body[:200]!r}")
                mine.remove(s.job_id)
            elif mine and rng.random() < 0.3:
                # Read traffic under chaos: a status, now and then a download.
                job = rng.choice(mine)
                if rng.random() < 0.3:
                    self.authed(user, "download", "GET", f"/v1/jobs/{job}/mp3", timeout=60,
                                budget=30)
                else:
                    self.authed(user, "status", "GET", f"/v1/jobs/{job}", timeout=30, budget=30)

    def chaos(self):
        """Kills a random role every ~kill_every s (counted from the end of the previous event, so
        a long outage is not followed by a burst of kills); restarts RabbitMQ and Redis once each
        and stops RGW for a while, at fixed points of the load window. One event at a time."""
        L = CFG.load_seconds
        servers = [(0.22 * L, "rabbitmq"), (0.45 * L, "redis"), (0.65 * L, "rgw")]
        names = list(self.roles)
        next_kill = self.load_start + CFG.kill_every / 2
        while not self.chaos_stop.is_set():
            due_server = self.load_start + servers[0][0] if servers else float("inf")
            is_server = due_server <= next_kill
            at = due_server if is_server else next_kill
            if at >= self.load_start + L:
                return
            while now() < at:
                if self.chaos_stop.wait(min(0.2, at - now())):
                    return
            started = now()
            event = {"what": "", "start": started, "end": None, "detail": ""}
            self.events.append(event)
            try:
                if is_server:
                    what = servers.pop(0)[1]
                    if what == "rgw":
                        event["what"] = f"RGW stopped for {CFG.rgw_outage_seconds:.0f} s"
                        took = self.servers.action("rgw", "stop")
                        time.sleep(CFG.rgw_outage_seconds)
                        back = self.servers.action("rgw", "start")
                    else:
                        event["what"] = (f"{'RabbitMQ' if what == 'rabbitmq' else 'Redis'} "
                                         "restarted")
                        took = self.servers.action(what, "stop")
                        back = self.servers.action(what, "start")
                    event["detail"] = f"stop {took:.1f} s, start {back:.1f} s"
                else:
                    name = self.rng.choice(names)
                    role = self.roles[name]
                    event["what"] = f"kill -9 {name}"
                    in_flight = self.await_conversion(role) if role.roles_flag == "converter" \
                        else set()
                    old, new = role.kill_and_restart()
                    self.interrupted.update(in_flight)
                    event["detail"] = (
                        (f"while converting {', '.join(sorted(in_flight))}; " if in_flight
                         else "") + f"pid {old} -> {new}, answering again after "
                        f"{now() - started:.1f} s")
            except Exception as e:  # recorded: a chaos step that fails is a failed run
                event["detail"] = f"FAILED: {e}"
                self.failures.append(f"chaos step {event['what']} failed: {e}")
                log(f"!! chaos: {event['what']} failed: {e}")
            event["end"] = now()
            log(f"chaos: {event['what']}: {event['detail']}")
            if is_server:
                next_kill = max(next_kill, now() + CFG.kill_every / 2)
            else:
                next_kill = now() + CFG.kill_every * self.rng.uniform(0.75, 1.25)

    def await_conversion(self, role, patience=10.0):
        """Waits (at most `patience` s) until the converter is converting, so that the kill
        interrupts a conversion (they take ~0.05-1 s here; a blind kill would rarely hit one).
        Returns the jobs it was converting, from its log."""
        deadline = now() + patience
        offset = role.current.log_offset
        converting = set()
        while True:
            with open(role.log_path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1
            offset += end
            for line in chunk[:end].decode(errors="replace").splitlines():
                m = re.search(r"job (\w+): (converting|done|failed|cancelled|handed back)", line)
                if m and m.group(2) == "converting":
                    converting.add(m.group(1))
                elif m:
                    converting.discard(m.group(1))
            if converting or now() >= deadline:
                return converting
            time.sleep(0.02)

    def sampler(self):
        """VmRSS of every vmp3 process every few seconds; restarts roles that died on their own."""
        while not self.stop.is_set():
            for role in self.roles.values():
                role.check_alive()
                inst = role.current
                if inst is None or inst.ended is not None:
                    continue
                try:
                    with open(f"/proc/{inst.pid}/status") as f:
                        for line in f:
                            if line.startswith("VmRSS:"):
                                inst.samples.append((now(), int(line.split()[1])))
                                break
                except OSError:
                    pass
            self.stop.wait(CFG.sample_every)

    # --- state via the API ---------------------------------------------------------------------
    def list_jobs(self, user):
        jobs, cursor = [], None
        while True:
            path = "/v1/jobs?limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor
                                           else "")
            r, _ = self.authed(user, "list", "GET", path, timeout=30)
            if r.status != 200:
                raise RuntimeError(f"GET {path} for {user['name']}: {r.status} {r.body[:300]!r}")
            page = r.json()
            jobs += page["jobs"]
            cursor = page.get("next_cursor")
            if not cursor:
                return jobs

    def all_jobs(self):
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            lists = list(pool.map(self.list_jobs, self.users))
        return [(u, j) for u, jobs in zip(self.users, lists) for j in jobs]

    # --- the bucket ----------------------------------------------------------------------------
    def s3_list(self, query):
        url = f"{self.endpoint}/{self.bucket}?{query}"
        p = run(["curl", "-sS", "--fail-with-body", "--max-time", "60", "--aws-sigv4",
                 "aws:amz:us-east-1:s3", "--user", f"{self.s3_keys[0]}:{self.s3_keys[1]}",
                 "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", url], check=False, timeout=90)
        if p.returncode != 0:
            raise RuntimeError(f"listing the bucket failed: {p.stdout[:500]!r} {p.stderr!r}")
        return p.stdout.decode()

    def s3_put(self, key, data):
        """Stores `data` at `key` under this run's prefix, with curl (SigV4), as no vmp3 process
        would: an object no job owns."""
        url = f"{self.endpoint}/{self.bucket}/{self.prefix}/{key}"
        p = run(["curl", "-sS", "--fail-with-body", "--max-time", "60", "--aws-sigv4",
                 "aws:amz:us-east-1:s3", "--user", f"{self.s3_keys[0]}:{self.s3_keys[1]}",
                 "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-X", "PUT", "--data-binary",
                 "@-", url], check=False, timeout=90, input=data)
        if p.returncode != 0:
            raise RuntimeError(f"PUT {key} failed: {p.stdout[:500]!r} {p.stderr!r}")

    def plant_orphans(self):
        """Objects no job owns, as a crash between storing an input and creating its job (or a
        lost removal) leaves them: the orphan check then fails unless a janitor pass really
        removed them, rather than passing on a bucket that simply never had an orphan."""
        token = base64.b32encode(os.urandom(10)).decode().lower().rstrip("=")
        self.planted = [f"inputs/orphan{token}", f"outputs/orphan{token}.mp3"]
        for key in self.planted:
            self.s3_put(key, b"soak: an object no job owns\n")
        log(f"planted {len(self.planted)} orphan objects: {', '.join(self.planted)}")

    def bucket_objects(self):
        """Keys under this run's prefix (without it), and multipart uploads in progress."""
        # curl's SigV4 signs the query as written: parameters sorted, "/" encoded.
        prefix = urllib.parse.quote(self.prefix + "/", safe="")
        keys, token = [], None
        while True:
            query = (f"continuation-token={urllib.parse.quote(token, safe='')}&" if token
                     else "") + f"list-type=2&prefix={prefix}"
            xml = self.s3_list(query)
            keys += re.findall(r"<Key>([^<]*)</Key>", xml)
            m = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", xml)
            if "<IsTruncated>true</IsTruncated>" not in xml or not m:
                break
            token = m.group(1)
        uploads = re.findall(r"<Key>([^<]*)</Key>", self.s3_list(f"prefix={prefix}&uploads="))
        strip = len(self.prefix) + 1
        return [k[strip:] for k in keys], [k[strip:] for k in uploads]

    # --- cleanup -------------------------------------------------------------------------------
    def shutdown(self):
        self.stop.set()
        self.chaos_stop.set()
        for role in self.roles.values():
            try:
                role.stop()
            except Exception as e:
                log(f"stopping {role.name}: {e}")
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(15)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        try:
            self.servers.stop()
        except Exception as e:
            log(f"stopping the servers: {e}")


# ---------------------------------------------------------------------------------------------
# Accounting.

class Report:
    def __init__(self):
        self.checks = []  # (name, ok or None for skipped, detail)
        self.sections = []  # (title, markdown lines)

    def check(self, name, ok, detail):
        self.checks.append((name, ok, detail))
        mark = "PASS" if ok else ("SKIP" if ok is None else "FAIL")
        log(f"{mark}  {name}: {detail}")

    def failed(self):
        return any(ok is False for _, ok, _ in self.checks)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return lines


def short_list(items, n=8):
    items = list(items)
    text = ", ".join(str(i) for i in items[:n])
    return text + (f", … ({len(items)} in all)" if len(items) > n else "")


def account(soak, durations, media_dir, report, final_jobs, drain_took, stuck):
    plan = soak.plan
    accepted = [s for s in plan if s.job_id]
    deleted = [s for s in accepted if s.delete_after is not None]
    kept = [s for s in accepted if s.delete_after is None]
    by_id = {}
    duplicates_in_listing = []
    soak.owner_of = {}
    for user, job in final_jobs:
        if job["id"] in by_id:
            duplicates_in_listing.append(job["id"])
        by_id[job["id"]] = job
        soak.owner_of[job["id"]] = user
    accepted_ids = {s.job_id for s in accepted}
    unacknowledged = [j for j in by_id if j not in accepted_ids]

    # Submissions and refusals.
    refused = collections.Counter(s.refused for s in plan if s.refused is not None)
    empty = [s for s in plan if s.media == "bad-empty.mp4"]
    empty_ok = all(s.refused == 400 or (s.job_id and s.media == "bad-empty.mp4") for s in empty)
    unexpected_refusals = [s for s in plan if s.refused is not None
                           and not (s.media == "bad-empty.mp4" and s.refused == 400)]
    report.check("uploads accepted (202), none refused after retries",
                 not unexpected_refusals,
                 f"{len(accepted)} accepted of {len(plan)} submitted; refused: "
                 + (", ".join(f"{k}: {v}" for k, v in sorted(refused.items())) or "none")
                 + (f"; unexpected: {short_list(f'#{s.index} {s.media} -> {s.refused}' for s in unexpected_refusals)}"
                    if unexpected_refusals else "")
                 + f" (the {len(empty)} empty uploads are refused with 400 by design)")
    report.check("empty uploads refused with 400 (empty_input never reaches a converter)",
                 empty_ok, f"{len(empty)} empty uploads: statuses "
                 + ", ".join(sorted({str(s.refused or 202) for s in empty})))

    # Every accepted (and not deleted) job ended, once.
    missing = [s for s in kept if s.job_id not in by_id]
    not_ended = [(s.job_id, by_id[s.job_id]["status"]) for s in kept
                 if s.job_id in by_id and by_id[s.job_id]["status"] not in ("done", "failed")]
    report.check(f"every accepted job ended done or failed within {CFG.drain_seconds:.0f} s "
                 "of the chaos ending", not missing and not not_ended and not stuck,
                 f"{len(kept)} jobs (deleted ones aside) ended; drain took {drain_took:.1f} s"
                 + (f"; MISSING from the API: {short_list(s.job_id for s in missing)}"
                    if missing else "")
                 + (f"; NOT ENDED: {short_list(f'{i} ({st})' for i, st in not_ended)}"
                    if not_ended else ""))
    no_reason = [j["id"] for j in by_id.values() if j["status"] == "failed" and not (
        j.get("error") and j["error"].get("code") and j["error"].get("message"))]
    report.check("every failed job says why (error code + message)", not no_reason,
                 f"{sum(1 for j in by_id.values() if j['status'] == 'failed')} failed"
                 + (f"; without a reason: {short_list(no_reason)}" if no_reason else ""))
    report.check("each job exactly once in the API", not duplicates_in_listing,
                 f"{len(by_id)} distinct jobs listed"
                 + (f"; listed twice: {short_list(duplicates_in_listing)}"
                    if duplicates_in_listing else ""))

    # Good inputs done, bad ones failed with the right code.
    good_failed, limit_failed, bad_wrong = [], [], []
    for s in kept:
        job = by_id.get(s.job_id)
        if not job or job["status"] not in ("done", "failed"):
            continue
        code = (job.get("error") or {}).get("code")
        if s.bad:
            expected = BAD[s.media]
            if job["status"] != "failed" or (expected is not None and code not in expected) \
                    or (expected is None and code != "empty_input"):
                bad_wrong.append(f"{s.job_id} ({s.media}): {job['status']} {code}")
        elif job["status"] == "failed":
            entry = f"{s.job_id} ({s.media}): {code}: {(job.get('error') or {}).get('message')}"
            (limit_failed if code in LIMIT_CODES else good_failed).append(entry)
    n_good = sum(1 for s in kept if not s.bad)
    n_bad = sum(1 for s in kept if s.bad)
    report.check("good inputs ended done", not good_failed,
                 f"{n_good - len(good_failed) - len(limit_failed)} of {n_good} done"
                 + (f"; FAILED: {short_list(good_failed, 5)}" if good_failed else ""))
    report.check("no good input failed on a limit", not limit_failed,
                 short_list(limit_failed, 5) if limit_failed else "none")
    report.check("bad inputs ended failed with the right code", not bad_wrong,
                 f"{n_bad - len(bad_wrong)} of {n_bad} right"
                 + (f"; WRONG: {short_list(bad_wrong, 5)}" if bad_wrong else ""))

    # Converter logs: "job <id>: done (" at most once per job.
    done_lines = collections.Counter()
    for name in ("converter1", "converter2"):
        text = (soak.run_dir / "logs" / f"{name}.log").read_text(errors="replace")
        done_lines.update(re.findall(r"job (\w+): done \(", text))
    dup_done = {j: n for j, n in done_lines.items() if n > 1}
    done_but_failed = [j for j in done_lines if by_id.get(j, {}).get("status") == "failed"]
    done_ids = {j for j, job in by_id.items() if job["status"] == "done"}
    unlogged_done = [j for j in done_ids if j not in done_lines]
    report.check("converter logs agree with the API (no job logged done that ended failed, "
                 "every done job logged)", not done_but_failed and not unlogged_done,
                 f"{len(done_lines)} jobs logged done; duplicate done lines (at-least-once "
                 f"artefact): {sum(n - 1 for n in dup_done.values())}"
                 + (f" ({short_list(f'{j} x{n}' for j, n in dup_done.items())})" if dup_done
                    else "")
                 + (f"; logged done but FAILED in the API: {short_list(done_but_failed)}"
                    if done_but_failed else "")
                 + (f"; done in the API but never logged: {short_list(unlogged_done)}"
                    if unlogged_done else ""))

    # Conversions the chaos interrupted (kill -9 of their converter): ended like any other.
    interrupted = sorted(soak.interrupted)
    media_of = {s.job_id: s for s in accepted}
    wrong = []
    for j in interrupted:
        s = media_of.get(j)
        job = by_id.get(j)
        if s is None or s.delete_after is not None:
            continue
        want = "failed" if s.bad else "done"
        if not job or job["status"] != want:
            wrong.append(f"{j} ({s.media}): {job['status'] if job else 'missing'}")
    report.check("conversions interrupted by kill -9 were redelivered and ended right",
                 not wrong, f"{len(interrupted)} interrupted" + (": " if interrupted else "")
                 + ", ".join(f"{st}: {n}" for st, n in sorted(collections.Counter(
                     (by_id.get(j) or {}).get("status", "deleted") for j in interrupted).items()))
                 + (f"; WRONG: {short_list(wrong)}" if wrong else ""))

    # Every done MP3: downloaded through the gateway, decoded, the input's duration.
    to_check = [(soak.users[s.client], s.job_id, s.media) for s in kept
                if by_id.get(s.job_id, {}).get("status") == "done"]
    to_check += [(soak.owner_of[j], j, None) for j in unacknowledged
                 if by_id[j]["status"] == "done"]
    tmp = Path(tempfile.mkdtemp(prefix="mp3-", dir=soak.run_dir))
    bad_mp3 = []
    worst = [0.0]

    def verify(item):
        user, job_id, media = item
        r, _ = soak.authed(user, "verify-download", "GET", f"/v1/jobs/{job_id}/mp3",
                           timeout=120)
        if r.status != 200:
            return f"{job_id} ({media}): download {r.status}"
        recorded = (by_id[job_id].get("output") or {}).get("size")
        if len(r.body) != recorded:
            return f"{job_id} ({media}): {len(r.body)} bytes downloaded, the job says {recorded}"
        if media is None:  # created without a 202: its input is not known here
            media = next((m for m in durations if m == by_id[job_id]["input"]["filename"]), None)
            if media is None:
                return f"{job_id}: done, from an input the soak does not know"
        path = tmp / f"{job_id}.mp3"
        path.write_bytes(r.body)
        try:
            seconds, errors = decoded_seconds(path)
        finally:
            path.unlink()
        if seconds is None or errors:
            return f"{job_id} ({media}): does not decode cleanly: {errors[:200]}"
        delta = abs(seconds - durations[media])
        worst[0] = max(worst[0], delta)
        if delta > CFG.duration_tolerance:
            return (f"{job_id} ({media}): {seconds:.3f} s decoded, input {durations[media]:.3f} s"
                    f" (off by {delta:.3f} s)")
        return None

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        bad_mp3 = [x for x in pool.map(verify, to_check) if x]
    shutil.rmtree(tmp, ignore_errors=True)
    report.check(f"every done MP3 downloads (the size its job records), decodes (ffmpeg -v "
                 f"error) and lasts as long as its input (±{CFG.duration_tolerance} s)",
                 not bad_mp3,
                 f"{len(to_check) - len(bad_mp3)} of {len(to_check)} right; largest difference "
                 f"{worst[0] * 1000:.1f} ms" + (f"; WRONG: {short_list(bad_mp3, 5)}"
                                                 if bad_mp3 else ""))

    # Deleted jobs gone from the API.
    still_there = []
    for s in deleted:
        r, _ = soak.authed(soak.users[s.client], "verify-deleted", "GET", f"/v1/jobs/{s.job_id}",
                           timeout=30)
        if r.status != 404:
            still_there.append(f"{s.job_id}: {r.status}")
    gave_up = [s for s in deleted if s.delete_status not in (204, 404)]
    report.check("deleted jobs are gone (404)", not still_there,
                 f"{len(deleted)} deleted (DELETE answered "
                 + ", ".join(f"{k}: {v}" for k, v in sorted(collections.Counter(
                     s.delete_status for s in deleted).items()))
                 + (f"; {len(gave_up)} DELETEs gave up, the janitor finishes them" if gave_up
                    else "") + ")" + (f"; STILL THERE: {short_list(still_there)}"
                                      if still_there else ""))

    # The bucket: outputs of done jobs and nothing else, after the janitor had its chance.
    expected_keys = {f"outputs/{j}.mp3" for j in done_ids}
    deleted_ids = {s.job_id for s in deleted}
    quiet = now()
    deadline = quiet + CFG.orphan_grace + 2 * CFG.janitor_interval + 15
    while True:
        keys, uploads = soak.bucket_objects()
        key_set = set(keys)
        missing_outputs = sorted(expected_keys - key_set)
        unowned, leftover, of_deleted = [], [], []
        for k in keys:
            m = re.match(r"(inputs|outputs)/([a-z2-7]+)(\.mp3)?$", k)
            job_id = m.group(2) if m else None
            if k in expected_keys:
                continue
            if job_id in deleted_ids:
                of_deleted.append(k)
            elif job_id in by_id:
                leftover.append(k)  # an input (or output) of an ended job that should be gone
            else:
                unowned.append(k)
        if not (unowned or leftover or of_deleted) or now() > deadline:
            break
        time.sleep(5)
    waited = now() - quiet
    report.check("done jobs' MP3s are in the bucket", not missing_outputs,
                 f"{len(expected_keys) - len(missing_outputs)} of {len(expected_keys)}"
                 + (f"; MISSING: {short_list(missing_outputs)}" if missing_outputs else ""))
    report.check("deleted jobs' objects are gone", not of_deleted,
                 f"{len(deleted)} deleted jobs" + (f"; LEFT: {short_list(of_deleted)}"
                                                   if of_deleted else ""))
    report.check("no input of an ended job is left (--keep-inputs is off)", not leftover,
                 "none" if not leftover else f"LEFT: {short_list(leftover)}")
    planted_left = [k for k in soak.planted if k in key_set]
    orphan_detail = (f"{len(soak.planted) - len(planted_left)} of {len(soak.planted)} planted "
                     f"orphans removed; {len(keys)} objects under the prefix, {len(unowned)} "
                     f"owned by no job "
                     f"(checked {waited:.0f} s after the jobs settled; janitor every "
                     f"{CFG.janitor_interval} s, grace {CFG.orphan_grace} s)"
                     + (f": {short_list(unowned)}" if unowned else "")
                     + f"; multipart uploads in progress: {len(uploads)}")
    if soak.has_orphan_sweep:
        report.check("the bucket holds no object that no job owns, after a janitor pass",
                     not unowned and not planted_left, orphan_detail)
    else:
        report.check("the bucket holds no object that no job owns", None,
                     "skipped: this build has no orphan sweep (no --orphan-grace); "
                     + orphan_detail)
    # Usage counters (kept in Redis, moved by every job write): each job counted once.
    usage_wrong = []
    for user in soak.users:
        jobs = [j for j in by_id.values() if soak.owner_of[j["id"]] is user]
        want_active = sum(1 for j in jobs if j["status"] not in ("done", "failed"))
        want_bytes = sum((j.get("output") or {}).get("size", 0) for j in jobs
                         if j["status"] == "done")
        want_bytes += sum(j["input"]["size"] for j in jobs if f"inputs/{j['id']}" in key_set)
        r, _ = soak.authed(user, "account", "GET", "/v1/account", timeout=30)
        usage = (r.json() or {}).get("usage") if r.status == 200 else None
        if usage is None:
            usage_wrong.append(f"{user['name']}: GET /v1/account {r.status}")
        elif usage.get("active_jobs") != want_active or usage.get("stored_bytes") != want_bytes:
            usage_wrong.append(f"{user['name']}: active {usage.get('active_jobs')} (want "
                               f"{want_active}), stored {usage.get('stored_bytes')} B (want "
                               f"{want_bytes})")
    report.check("every user's usage (GET /v1/account) matches their jobs: no unfinished job, "
                 "stored bytes = their MP3s", not usage_wrong,
                 f"{len(soak.users)} users" + (f"; WRONG: {short_list(usage_wrong, 5)}"
                                               if usage_wrong else ""))
    limited = sum(1 for _, _, st in STATUSES.entries if st == 429)
    report.check("no request refused by a limit (429): the limits are set above the soak's needs",
                 not limited, f"{limited} answers 429")

    if unacknowledged:
        soak.notes.append(f"{len(unacknowledged)} job(s) exist that no client saw a 202 for (the "
                          f"upload role died after creating them, the client retried): "
                          f"{short_list(unacknowledged)}; they are held to the same checks "
                          f"as the others where they apply (ended, bucket)")
    unack_not_ended = [j for j in unacknowledged if by_id[j]["status"] not in ("done", "failed")]
    if unack_not_ended:
        report.check("jobs created without a 202 ended too", False, short_list(unack_not_ended))

    return by_id, done_lines, dup_done


def memory_section(soak, report):
    """Start/peak/end VmRSS per role, and the growth check. Checked: every instance that lived
    at least 120 s of the run (the chaos kills roles, so few live it all); a role with no such
    instance fails the check (a short run skips it: too short to judge). The mean of the first quarter of its life in the run is
    compared with the mean of the last quarter, leaving out its first 30 s under load (pools,
    read-ahead buffers and the first conversions' allocations are working set, not growth)."""
    run_start, run_end = soak.load_start, soak.run_end
    warmup = 30.0
    min_life = 120.0
    rows, flagged, unchecked, checked = [], [], [], 0
    for name, role in soak.roles.items():
        samples = [s for inst in role.instances for s in inst.samples]
        if not samples:
            rows.append((name, "-", "-", "-", len(role.instances) - 1, "no samples"))
            continue
        first = next(i for i in role.instances if i.samples).samples[0][1]
        end = [i for i in role.instances if i.samples][-1].samples[-1][1]
        peak = max(kb for _, kb in samples)
        notes = []
        for inst in role.instances:
            begin, until = max(inst.started, run_start), min(inst.ended or run_end, run_end)
            if until - begin < min_life:
                continue
            whole = inst.started <= run_start and (inst.ended is None or inst.ended >= run_end)
            ss = [kb for t, kb in inst.samples if begin + warmup <= t <= until]
            if len(ss) < 8:
                continue
            q = len(ss) // 4
            a, b = statistics.mean(ss[:q]), statistics.mean(ss[-q:])
            growth = b / a - 1
            checked += 1
            grew = growth > CFG.rss_growth_limit and (b - a) / 1024 > CFG.rss_growth_floor_mb
            notes.append(f"{'whole run' if whole else f'pid {inst.pid}, {until - begin:.0f} s'}:"
                         f" {a / 1024:.1f} → {b / 1024:.1f} MB ({growth * 100:+.0f} %)"
                         + (" **GREW**" if grew else ""))
            if grew:
                flagged.append(f"{name} pid {inst.pid}: {a / 1024:.1f} → {b / 1024:.1f} MB")
        if not notes:
            longest = max(min(i.ended or run_end, run_end) - max(i.started, run_start)
                          for i in role.instances)
            notes.append(f"no instance lived {min_life:.0f} s (longest {longest:.0f} s)")
            unchecked.append(name)
        rows.append((name, f"{first / 1024:.1f}", f"{peak / 1024:.1f}", f"{end / 1024:.1f}",
                     len(role.instances) - 1, "; ".join(notes)))
    report.check(f"memory flat (no process's mean VmRSS grew > {CFG.rss_growth_limit:.0%} and > "
                 f"{CFG.rss_growth_floor_mb:.0f} MB from the first to the last quarter of its life)",
                 None if CFG.short else not flagged and not unchecked,
                 f"{checked} process(es) lived ≥ {min_life:.0f} s and were checked"
                 + (f"; GREW: {'; '.join(flagged)}" if flagged else "")
                 + (f"; NOT CHECKED (no instance lived long enough): {', '.join(unchecked)}"
                    if unchecked else ""))
    return table(["role", "start MB", "peak MB", "end MB", "restarts",
                  "checked instances: first → last quarter (mean VmRSS)"], rows)


def main():
    if not CFG.vmp3.exists():
        print(f"soak: {CFG.vmp3} is missing: build it (ninja -C build vmp3_cli)", file=sys.stderr)
        return 2
    CFG.dir.mkdir(parents=True, exist_ok=True)
    soak = Soak()
    report = Report()

    def on_signal(signum, _frame):
        raise Interrupted(f"signal {signum}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    log(f"soak {'SHORT ' if CFG.short else ''}run {soak.stamp}: {CFG.jobs} jobs, {CFG.clients} "
        f"clients, load {CFG.load_seconds:.0f} s, kill every ~{CFG.kill_every:.0f} s, seed "
        f"{CFG.seed}; state in {soak.run_dir}")
    exit_code = 2
    try:
        media_dir, durations = prepare_media()
        media_bytes = {name: (media_dir / name).read_bytes() for name in list(GOOD) + list(BAD)}
        s3env = soak.servers.start()
        log("servers up (RabbitMQ, Redis, RGW)")
        soak.start_everything(s3env)
        soak.sign_in_users()
        soak.plan = make_plan(soak.rng)
        soak.plant_orphans()

        # Load and chaos.
        soak.load_start = now()
        threads = [threading.Thread(target=soak.sampler, daemon=True, name="sampler")]
        next_index, lock = [0], threading.Lock()
        clients = [threading.Thread(target=soak.client, args=(c, media_bytes, next_index, lock),
                                    daemon=True, name=f"client{c}") for c in range(CFG.clients)]
        chaos = threading.Thread(target=soak.chaos, daemon=True, name="chaos")
        for t in threads + clients + [chaos]:
            t.start()
        last_report = now()
        while any(t.is_alive() for t in clients):
            time.sleep(0.5)
            if now() - last_report >= 30:
                last_report = now()
                accepted = sum(1 for s in soak.plan if s.job_id)
                log(f"load: {accepted} accepted of {next_index[0]} started")
        soak.load_end = now()
        soak.chaos_stop.set()
        chaos.join()
        soak.chaos_end = now()
        log(f"load and chaos over after {soak.chaos_end - soak.load_start:.0f} s; draining")

        # Drain: every job ends (bounded).
        drain_deadline = now() + CFG.drain_seconds
        while True:
            jobs = soak.all_jobs()
            pending = [j["id"] for _, j in jobs if j["status"] not in ("done", "failed")]
            if not pending or now() > drain_deadline:
                break
            time.sleep(3)
        drain_took = now() - soak.chaos_end
        log(f"drain: {len(pending)} unfinished after {drain_took:.1f} s")

        by_id, done_lines, dup_done = account(soak, durations, media_dir, report, jobs,
                                              drain_took, pending)
        soak.run_end = now()
        exits = [(r.name, pid, code) for r in soak.roles.values()
                 for _, pid, code in r.unexpected_exits]
        report.check("no role process died on its own", not exits,
                     "none" if not exits else short_list(f"{n} pid {p} exit {c}"
                                                          for n, p, c in exits))
        report.check("chaos steps all worked", not soak.failures,
                     f"{len(soak.events)} events" + (f"; {'; '.join(soak.failures)}"
                                                      if soak.failures else ""))
        mem_table = memory_section(soak, report)
        text = write_results(soak, report, by_id, mem_table, drain_took, dup_done)
        print("\n" + text)
        exit_code = 1 if report.failed() else 0
    except Interrupted as e:
        log(f"interrupted ({e}); stopping everything")
        exit_code = 130
    except Exception as e:
        log(f"soak aborted: {type(e).__name__}: {e}")
        import traceback
        traceback.print_exc()
        exit_code = 2
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        log("stopping roles, nginx and the servers")
        soak.shutdown()
        log(f"done (exit {exit_code}); logs in {soak.run_dir}")
    return exit_code


def write_results(soak, report, by_id, mem_table, drain_took, dup_done):
    plan = soak.plan
    accepted = [s for s in plan if s.job_id]
    kept = [s for s in accepted if s.delete_after is None]
    done = [s for s in kept if by_id.get(s.job_id, {}).get("status") == "done"]
    failed = [s for s in kept if by_id.get(s.job_id, {}).get("status") == "failed"]
    failed_codes = collections.Counter(by_id[s.job_id]["error"]["code"] for s in failed
                                       if by_id[s.job_id].get("error"))
    refused = collections.Counter(s.refused for s in plan if s.refused is not None)
    lat = {"all": [], "short": [], "long": []}
    for s in done:
        latency = by_id[s.job_id]["finished_at"] - s.accepted_at
        lat["all"].append(latency)
        lat[GOOD[s.media][0]].append(latency)
    ended = [by_id[s.job_id] for s in done + failed]
    first = min((s.accepted_at for s in accepted), default=soak.load_start)
    last = max((j["finished_at"] for j in ended if j.get("finished_at")), default=first)
    throughput = len(ended) / max(1e-9, (last - first) / 60)

    # Client-visible statuses, during the chaos and after.
    phase = lambda t: "chaos" if t <= soak.chaos_end else "after"
    counts = collections.Counter()
    for t, op, status in STATUSES.entries:
        counts[(phase(t), op, status)] += 1
    ops = sorted({op for _, op, _ in counts})
    status_rows = []
    for op in ops:
        for ph in ("chaos", "after"):
            cells = {st: n for (p, o, st), n in counts.items() if o == op and p == ph}
            if cells:
                status_rows.append((op, ph, ", ".join(f"{'conn. error' if st == 0 else st}: {n}"
                                                      for st, n in sorted(cells.items()))))
    # Per chaos event: what clients saw while it lasted (and 5 s after).
    event_rows = []
    for e in soak.events:
        seen = collections.Counter(st for t, _, st in STATUSES.entries
                                   if e["start"] <= t <= (e["end"] or e["start"]) + 5
                                   and st in RETRYABLE)
        event_rows.append((f"{e['start'] - soak.load_start:.0f} s", e["what"], e["detail"],
                           ", ".join(f"{'conn. error' if k == 0 else k}: {v}"
                                     for k, v in sorted(seen.items())) or "—"))
    during = [st for t, _, st in STATUSES.entries if t <= soak.chaos_end]
    n503 = during.count(503)
    n429 = during.count(429)
    n502 = during.count(502)
    commit = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=False)
    changed = run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct", "--", "src", "app"],
                  check=False).stdout.decode().strip()
    if changed.isdigit() and int(changed) > CFG.vmp3.stat().st_mtime:
        soak.notes.append(f"{CFG.vmp3} is older than the last commit to src/ or app/: the run "
                          "measured an older build than the commit named above")
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "app"],
                check=False).stdout.strip()
    mode = "short" if CFG.short else "full"
    lines = [f"## Soak ({mode}), {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} "
             f"({os.cpu_count()} cores), commit {commit.stdout.decode().strip()}"
             f"{' + uncommitted changes' if dirty else ''}", ""]
    lines += [f"RabbitMQ, Redis, Ceph RGW and every role as its own process (auth, upload, "
              f"metadata, download, notifier, 2 converters × 1 worker) behind nginx; "
              f"{CFG.clients} clients, {len(plan)} uploads over {CFG.load_seconds:.0f} s; chaos: kill -9 of a "
              f"random role every ~{CFG.kill_every:.0f} s, RabbitMQ and Redis restarted once, "
              f"RGW stopped {CFG.rgw_outage_seconds:.0f} s. Seed {CFG.seed}.", ""]
    lines += ["### Accounting", ""]
    lines += table(["check", "result", "detail"],
                   [(n, "PASS" if ok else ("skipped" if ok is None else "**FAIL**"),
                     d.replace("|", "\\|")) for n, ok, d in report.checks])
    lines += ["", "### Counts", ""]
    lines += table(["measure", "value"], [
        ("uploads submitted", len(plan)),
        ("accepted (202)", len(accepted)),
        ("refused after retries", ", ".join(f"{k}: {v}" for k, v in sorted(refused.items()))
         or "0"),
        ("deleted mid-flight", sum(1 for s in accepted if s.delete_after is not None)),
        ("done", len(done)),
        ("failed", f"{len(failed)} (" + ", ".join(f"{k}: {v}" for k, v in
                                                  sorted(failed_codes.items())) + ")"),
        ("latency accepted → done, p50 / p99 (all)",
         f"{percentile(lat['all'], .5):.2f} s / {percentile(lat['all'], .99):.2f} s"),
        ("… short clips / 30-120 s files, p50 / p99",
         f"{percentile(lat['short'], .5):.2f} / {percentile(lat['short'], .99):.2f} s; "
         f"{percentile(lat['long'], .5):.2f} / {percentile(lat['long'], .99):.2f} s"),
        ("throughput (ended jobs / minute, first accept → last finish)", f"{throughput:.1f}"),
        ("client requests answered 503 / 429 / 502 during the chaos", f"{n503} / {n429} / {n502}"),
        ("drain after the chaos ended", f"{drain_took:.1f} s"),
        ("duplicate 'done' log lines (at-least-once redeliveries)",
         sum(n - 1 for n in dup_done.values())),
    ])
    lines += ["", "### What clients saw (every request, retries included)", ""]
    lines += table(["operation", "phase", "statuses"], status_rows)
    lines += ["", "### Chaos", ""]
    lines += table(["at", "event", "detail", "retryable answers meanwhile"], event_rows)
    lines += ["", "### Memory (VmRSS, sampled every "
              f"{CFG.sample_every:.0f} s; start = first sample, end = last)", ""]
    lines += mem_table
    if soak.notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in soak.notes]
    lines += ["", f"Result: **{'FAIL' if report.failed() else 'PASS'}**. Logs: "
              f"`{soak.run_dir.relative_to(ROOT) if soak.run_dir.is_relative_to(ROOT) else soak.run_dir}`.", ""]
    text = "\n".join(lines)
    CFG.results_dir.mkdir(parents=True, exist_ok=True)
    name = f"soak{'-short' if CFG.short else ''}-{soak.stamp}.md"
    (CFG.results_dir / name).write_text(text)
    (soak.run_dir / "results.md").write_text(text)
    log(f"results written to {CFG.results_dir / name}")
    return text


if __name__ == "__main__":
    sys.exit(main())
