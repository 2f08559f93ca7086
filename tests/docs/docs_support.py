"""Shared helpers for the docs smoke tests (tests/docs/*_test.py): they run the commands README.md
and docs/ tell a user to run, the way a user runs them, and check that each did what the text says.

Python 3 standard library only. Each test is a script that ctest runs (label `docs`); it exits 0
when every check passed, 1 with the failed check on stderr otherwise.

Environment (set by tests/docs/CMakeLists.txt):
  VMP3_SOURCE_DIR  the source tree (Makefile, scripts/, docs/)
  VMP3_BUILD_DIR   the build tree the tests belong to (`make ... BUILD_DIR=` points there)
  VMP3_BINARY      the built vmp3 executable
"""

import contextlib
import json
import os
import re
import signal
import socket
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
BINARY = os.environ.get("VMP3_BINARY", "")


def run_test(body):
    """Runs `body()` and turns its outcome into the exit status ctest reads."""
    for name, value in (("VMP3_SOURCE_DIR", SOURCE_DIR), ("VMP3_BUILD_DIR", BUILD_DIR),
                        ("VMP3_BINARY", BINARY)):
        if not value:
            print(f"{name} is not set (run through ctest)", file=sys.stderr)
            sys.exit(2)
    run_checks(body)


def temp_dir(prefix):
    """A fresh directory under the build tree (so it is never in the source tree and goes with the
    build), removed when the `with` block ends unless VMP3_KEEP_TEMP=1."""
    return scratch_dir(os.path.join(BUILD_DIR, "docs-tests"), prefix)


def user_env(**extra):
    """The environment a user's shell would give: without what an enclosing `make test` exports
    to its recipes (MAKEFLAGS would hand the inner make a jobserver it cannot reach)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env.update(extra)
    return env


# ---- Ports -----------------------------------------------------------------------------------


def port_is_free(port):
    """Nothing listens on `port` and a server could listen there again. (SO_REUSEADDR, as every
    server sets: connections of the stopped server may linger in TIME_WAIT, which is harmless.)"""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


# ---- The build ---------------------------------------------------------------------------------


def require_build_up_to_date():
    """`make run` and friends build first. Under `make test` that is a no-op; on a stale tree a
    test would rebuild the project in the middle of a test run, so it refuses instead.

    `ninja -n` cannot tell: CMake's glob check makes build.ninja always look out of date, and a
    dry run stops at the manifest. So: run the glob check (what ninja would run first; no
    compiling), require build.ninja newer than everything it is generated from, then dry-run a
    copy of the manifest without its regeneration edge."""
    verify = os.path.join(BUILD_DIR, "CMakeFiles", "VerifyGlobs.cmake")
    if os.path.exists(verify):
        done = subprocess.run(["cmake", "-P", verify], cwd=BUILD_DIR, capture_output=True,
                              text=True)
        check(done.returncode == 0, f"CMake's glob check failed: {done.stderr}")
    manifest = os.path.join(BUILD_DIR, "build.ninja")
    with open(manifest) as f:
        text = f.read()
    m = re.search(r"^build build\.ninja: RERUN_CMAKE (.*?)\n\n", text, re.M | re.S)
    check(m, f"{manifest} has no regeneration edge; is it a CMake Ninja build?")
    built = os.path.getmtime(manifest)
    inputs = [p.replace("$ ", " ") for p in re.split(r"(?<!\$) ", m.group(1).replace("|", " "))
              if p.strip()]
    newer = [p for p in inputs if os.path.exists(os.path.join(BUILD_DIR, p))
             and os.path.getmtime(os.path.join(BUILD_DIR, p)) > built]
    check(not newer, f"the build tree {BUILD_DIR} needs CMake to run again ({newer[:2]} changed); "
                     f"build it first (make build)")
    copy = os.path.join(BUILD_DIR, "docs-tests", "up-to-date.ninja")
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    with open(copy, "w") as f:
        f.write(text[:m.start()] + text[m.end():])
    dry = subprocess.run(["ninja", "-C", BUILD_DIR, "-f", copy, "-n"], capture_output=True,
                         text=True)
    steps = [line for line in dry.stdout.splitlines() if re.match(r"^\[\d+/\d+\] ", line)]
    check(dry.returncode == 0 and not steps,
          f"the build tree {BUILD_DIR} is out of date ({len(steps)} steps to run, e.g. "
          f"{steps[:1]}{dry.stderr.strip()}); build it first (make build)")


# ---- Processes -----------------------------------------------------------------------------------


def process_start_time(pid):
    """The process's start time in clock ticks (identifies it even if its PID is reused), or None
    when it no longer runs (a zombie counts as gone: it has exited, only its parent can reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def process_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def process_command(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def refers_to(pid, directory):
    """The process's command line names `directory`, or it works in it."""
    directory = os.path.realpath(directory)
    with contextlib.suppress(OSError):
        if os.path.realpath(os.readlink(f"/proc/{pid}/cwd")).startswith(directory + os.sep):
            return True
    return directory in process_command(pid)


def parent_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


class MarkedProcesses:
    """Every process a test starts carries VMP3_DOCS_TEST_MARK=<unique> in its environment, which
    its children inherit, also the daemons that leave the process tree (servers started with
    setsid). `snapshot()` finds them by PID, plus their descendants, plus the processes recorded in
    *.pid files under given directories (nginx and redis-server overwrite their environment with
    their process title, so only their PID files name them); `alive()` says which of a snapshot
    still run (by PID and start time, so a reused PID is not mistaken for one of ours)."""

    def __init__(self):
        self.mark = f"{uuid.uuid4().hex}"
        self._needle = f"VMP3_DOCS_TEST_MARK={self.mark}".encode()

    def env(self, base=None):
        """`base` (default: user_env()) with the mark added."""
        env = dict(base) if base is not None else user_env()
        env["VMP3_DOCS_TEST_MARK"] = self.mark
        return env

    def snapshot(self, pid_file_dirs=()):
        """{pid: (start_time, command)} of every live marked process, every process named by a
        *.pid file under `pid_file_dirs` (if its command line or working directory names that
        directory: a stale PID file never adopts an unrelated process), and their descendants."""
        me = os.getpid()
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]
        marked = {p for p in pids if self._needle in process_environ(p)}
        for top in pid_file_dirs:
            for root, _, files in os.walk(top):
                for name in files:
                    if not name.endswith(".pid"):
                        continue
                    with contextlib.suppress(OSError, ValueError):
                        with open(os.path.join(root, name)) as f:
                            pid = int(f.read().split()[0])
                        if pid in pids and refers_to(pid, top):
                            marked.add(pid)
        parents = {p: parent_of(p) for p in pids}
        grew = True
        while grew:
            grew = False
            for pid, parent in parents.items():
                if parent in marked and pid not in marked:
                    marked.add(pid)
                    grew = True
        found = {}
        for pid in marked:
            start = process_start_time(pid)
            if start is not None:
                found[pid] = (start, process_command(pid))
        return found

    @staticmethod
    def alive(snapshot):
        return {pid: info for pid, info in snapshot.items() if process_start_time(pid) == info[0]}

    def kill_all(self, pid_file_dirs=(), grace=15):
        """Last resort after a failed test: SIGTERM every process of `snapshot(pid_file_dirs)`
        still alive (all started by this test), SIGKILL what is left after `grace` seconds."""
        left = self.snapshot(pid_file_dirs)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while left and time.monotonic() < deadline:
                time.sleep(0.2)
                left = self.alive(left)
            if not left:
                return
        log(f"could not stop: {left}")


class OutputReader:
    """Collects a process's merged stdout/stderr lines in a thread, so a test can wait for a line
    without blocking on a pipe (and the process never blocks on a full pipe)."""

    def __init__(self, stream, echo_prefix=""):
        self.lines = []
        self._cond = threading.Condition()
        self._closed = False
        self._prefix = echo_prefix
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        for line in stream:
            print(f"{self._prefix}{line}", end="", flush=True)
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait_for(self, pattern, timeout):
        """The first match of `pattern` in a line, waiting up to `timeout` s; None on timeout or
        when the output ended without it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    m = regex.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return None
                self._cond.wait(left)

    def wait_closed(self, timeout):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def text(self):
        with self._cond:
            return "\n".join(self.lines)


def start(command, marks, cwd=None, extra_env=None, prefix="", pass_fds=()):
    """Starts `command` in a new session (as a terminal would start a foreground job: a process
    group of its own that a Ctrl-C reaches as a whole), stdout and stderr merged into a reader.
    `pass_fds`: descriptors it inherits besides those."""
    proc = subprocess.Popen(command, cwd=cwd, env=marks.env(user_env(**(extra_env or {}))),
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True, pass_fds=pass_fds)
    return proc, OutputReader(proc.stdout, prefix)


def holders_of(path, pids):
    """Those of `pids` that have `path` open."""
    holders = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                        holders.append(pid)
                        break
    return holders


def wait_exit(proc, timeout):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


# ---- HTTP ----------------------------------------------------------------------------------------


def http(method, url, body=None, headers=None, timeout=30):
    """(status, headers, body bytes); HTTP errors are answers here, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def wait_healthy(base, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, _, body = http("GET", base + "/healthz", timeout=5)
            if status == 200:
                return json.loads(body)
            last = f"HTTP {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise CheckFailed(f"{base}/healthz did not answer 200 within {timeout} s (last: {last})")


# ---- Media ---------------------------------------------------------------------------------------


def make_clip(path, seconds):
    """A small MP4 (H.264 + AAC stereo tone) made by the ffmpeg CLI, like a user's talk.mp4."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-v", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=10:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-ac", "2", "-shortest", path],
        check=True)


def probe(path):
    """ffprobe's view of a file: {"format_name", "duration", "codec_name"} of its first audio
    stream; raises CheckFailed when ffprobe cannot read it."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "format=format_name,duration:stream=codec_name", "-of", "json", path],
        capture_output=True, text=True)
    check(out.returncode == 0, f"ffprobe cannot read {path}: {out.stderr.strip()}")
    info = json.loads(out.stdout)
    streams = info.get("streams") or [{}]
    return {"format_name": info.get("format", {}).get("format_name"),
            "duration": float(info.get("format", {}).get("duration", "nan")),
            "codec_name": streams[0].get("codec_name")}


def check_mp3(path, seconds, tolerance=0.15):
    """`path` is an MP3 that ffprobe reads as `seconds` long and that decodes without an error."""
    check(os.path.isfile(path) and os.path.getsize(path) > 0, f"{path} is missing or empty")
    info = probe(path)
    check(info["format_name"] == "mp3" and info["codec_name"] == "mp3",
          f"{path} is not an MP3: {info}")
    check(abs(info["duration"] - seconds) <= tolerance,
          f"{path} lasts {info['duration']:.3f} s, expected {seconds} s")
    decode = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", path,
                             "-f", "null", "-"], capture_output=True, text=True)
    check(decode.returncode == 0 and not decode.stderr.strip(),
          f"{path} does not decode cleanly: {decode.stderr.strip()}")
