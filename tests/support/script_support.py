"""What every Python test script under tests/ shares (tests/docs, tests/deploy): a check that
fails with a message, timestamped logging, turning a test body's outcome into ctest's exit
status, scratch directories under the build tree, and a free port. Python 3 standard library.

Import it after putting this directory on sys.path (the *_support.py modules do that).
"""

import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time


class CheckFailed(Exception):
    """A check of a test failed; the message says what was expected and what happened."""


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_checks(body):
    """Runs `body()`: exit 1 with the failed check on stderr, else logs how long it took."""
    started = time.monotonic()
    try:
        body()
    except CheckFailed as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    log(f"passed in {time.monotonic() - started:.1f} s")


@contextlib.contextmanager
def scratch_dir(root, prefix):
    """A fresh directory under `root` (created if missing), removed when the `with` block ends
    unless VMP3_KEEP_TEMP=1."""
    os.makedirs(root, exist_ok=True)
    path = tempfile.mkdtemp(prefix=prefix + "-", dir=root)
    try:
        yield path
    finally:
        if os.environ.get("VMP3_KEEP_TEMP") != "1":
            shutil.rmtree(path, ignore_errors=True)


def free_port():
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
