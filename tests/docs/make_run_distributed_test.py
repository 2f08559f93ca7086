#!/usr/bin/env python3
"""README's `make run-distributed`: real RabbitMQ, Redis and Ceph RGW, every role its own process,
nginx in front. One conversion goes through the gateway (register, log in, the notifier's webhook
list and its refusal of a private URL, upload, follow the events to done, download an MP3 of the
clip's length, delete); then SIGTERM to make stops every process and server the run started,
checked by PID.

The run keeps its state in BUILD_DIR/docs-run-distributed: inside the build tree, apart from the
servers `make test` runs (BUILD_DIR/test-servers), and kept between runs because Ceph's first
start is its slowest. Whatever happens, the test leaves nothing running."""

import base64
import json
import os
import re
import signal
import subprocess
import time
import uuid

import docs_support as ds

STARTUP_BUDGET_S = 240  # Ceph's first start on a loaded 2-core machine, with margin
CLIP_SECONDS = 2


def convert_through(base):
    user = "docs" + uuid.uuid4().hex[:12]
    password = "correct horse battery staple"
    status, _, body = ds.http("POST", base + "/v1/auth/register",
                              json.dumps({"username": user, "password": password}).encode(),
                              {"Content-Type": "application/json"})
    ds.check(status == 201, f"register answered {status}: {body[:300]!r}")

    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    status, _, body = ds.http("POST", base + "/v1/auth/login", b"",
                              {"Authorization": "Basic " + basic})
    ds.check(status == 200, f"login answered {status}: {body[:300]!r}")
    auth = {"Authorization": "Bearer " + json.loads(body)["access_token"]}

    # The notifier's routes reach the notifier (a token it verified with the auth role's JWKS;
    # its records in Redis), and its egress policy refuses a webhook to this machine.
    status, _, body = ds.http("GET", base + "/v1/webhooks", headers=auth)
    ds.check(status == 200 and json.loads(body) == {"webhooks": []},
             f"GET /v1/webhooks answered {status}: {body[:300]!r}")
    status, _, body = ds.http("POST", base + "/v1/webhooks",
                              json.dumps({"url": "https://127.0.0.1/hook"}).encode(),
                              dict(auth, **{"Content-Type": "application/json"}))
    ds.check(status == 422, f"a webhook to 127.0.0.1 answered {status}: {body[:300]!r}")

    with ds.temp_dir("distributed-clip") as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        ds.make_clip(clip, CLIP_SECONDS)
        with open(clip, "rb") as f:
            status, headers, body = ds.http(
                "POST", base + "/v1/jobs?filename=clip.mp4", f.read(),
                dict(auth, **{"Content-Type": "application/octet-stream"}))
        ds.check(status == 202, f"upload answered {status}: {body[:300]!r}")
        job = json.loads(body)["id"]
        ds.check(headers.get("Location") == f"/v1/jobs/{job}",
                 f"upload's Location is {headers.get('Location')}")
        ds.log(f"job {job} queued")

        # The event stream, through nginx (unbuffered), ends with the job's final status.
        status, _, body = ds.http("GET", f"{base}/v1/jobs/{job}/events", headers=auth,
                                  timeout=120)
        ds.check(status == 200, f"events answered {status}")
        finals = [json.loads(line[5:]).get("status") for line in body.decode().splitlines()
                  if line.startswith("data:") and '"status"' in line]
        ds.check(finals and finals[-1] == "done",
                 f"the job's events ended with {finals[-1:] or 'nothing'}: {body[-500:]!r}")

        status, headers, body = ds.http("GET", f"{base}/v1/jobs/{job}/mp3", headers=auth)
        ds.check(status == 200 and headers.get("Content-Type") == "audio/mpeg",
                 f"download answered {status} {headers.get('Content-Type')}")
        mp3 = os.path.join(tmp, "clip.mp3")
        with open(mp3, "wb") as f:
            f.write(body)
        ds.check_mp3(mp3, CLIP_SECONDS)
        ds.log(f"downloaded an MP3 of {len(body)} bytes, {CLIP_SECONDS} s")

    status, _, _ = ds.http("DELETE", f"{base}/v1/jobs/{job}", headers=auth)
    ds.check(status == 204, f"delete answered {status}")


def stop_leftovers(state_dir, marks):
    """After a failure: stop what the run may have left, gracefully first, all by PID."""
    subprocess.run([os.path.join(ds.SOURCE_DIR, "scripts", "test-servers"), "stop",
                    os.path.join(state_dir, "servers")], capture_output=True)
    marks.kill_all([state_dir])


def main():
    ds.require_build_up_to_date()
    state_dir = os.path.join(ds.BUILD_DIR, "docs-run-distributed")
    port = ds.free_port()
    marks = ds.MarkedProcesses()
    command = ["make", "--no-print-directory", "-C", ds.SOURCE_DIR, "run-distributed",
               f"BUILD_DIR={ds.BUILD_DIR}", f"LISTEN=127.0.0.1:{port}",
               f"DISTRIBUTED_DIR={state_dir}"]
    ds.log(f"make run-distributed on port {port}, state in {state_dir}")
    # Run as `flock SOME.lock make run-distributed` would: with a lock held on an inherited
    # descriptor. The servers outlive the command, so they must not keep it (or the lock stays
    # taken for as long as they run).
    os.makedirs(state_dir, exist_ok=True)
    lock_path = os.path.join(state_dir, "caller.lock")
    lock = os.open(lock_path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    started = time.monotonic()
    try:
        proc, out = ds.start(command, marks, prefix="  | ", pass_fds=(lock,))
    finally:
        os.close(lock)
    try:
        base = f"http://127.0.0.1:{port}"
        m = out.wait_for(r"vmp3 \(distributed\) listening on (http://\S+)", STARTUP_BUDGET_S)
        ds.check(m is not None, f"no 'listening on' line within {STARTUP_BUDGET_S} s; see "
                                f"{state_dir}/logs:\n{out.text()}")
        ds.check(m.group(1) == base + "/", f"it printed {m.group(1)}, expected {base}/")
        ds.log(f"up after {time.monotonic() - started:.1f} s")
        health = ds.wait_healthy(base, 10)
        ds.check(health.get("status") == "ok", f"/healthz through nginx answered {health}")

        running = marks.snapshot([state_dir])
        commands = [cmd for _, cmd in running.values()]
        roles = [c for c in commands if " serve --roles " in c]
        ds.check(len(roles) == 7, f"expected 7 role processes, found {roles}")
        for role in ("auth", "upload", "metadata", "download", "notifier", "converter"):
            ds.check(any(f" serve --roles {role} " in c for c in roles),
                     f"no {role} process among {roles}")
        for what in ("nginx: master", "redis-server", "beam.smp", "radosgw", "ceph-mon",
                     "ceph-osd", "epmd"):
            ds.check(any(what in c for c in commands), f"no {what} process among {commands}")
        ds.log(f"{len(running)} processes started")
        servers = [pid for pid, (_, cmd) in running.items()
                   if re.search(r"redis-server|beam\.smp|epmd|ceph-|radosgw", cmd)]
        held = ds.holders_of(lock_path, servers)
        ds.check(not held, "servers kept the caller's descriptors (a caller's lock would stay "
                           "taken while they run): " + ", ".join(running[p][1] for p in held))

        convert_through(base)

        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = ds.wait_exit(proc, 120)
        ds.check(status is not None, "make run-distributed still runs 120 s after SIGTERM")
        ds.log(f"stopped in {time.monotonic() - stopping:.1f} s, make's status {status}")
        ds.check(status == -signal.SIGTERM,
                 f"make ended with status {status}, expected to die of SIGTERM")
        ds.check(out.wait_for(r"a role exited", 0) is None, "a role exited before the stop")
        left = marks.alive(running)
        left.update(marks.snapshot([state_dir]))
        ds.check(not left, "still running after the stop: " +
                 "; ".join(f"{pid} {cmd}" for pid, (_, cmd) in left.items()))
        ds.check(ds.port_is_free(port), f"the gateway's port {port} is still taken")
    finally:
        if proc.poll() is None or marks.snapshot([state_dir]):
            ds.log("cleaning up after a failure")
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                ds.wait_exit(proc, 60)
            stop_leftovers(state_dir, marks)
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    ds.run_test(main)
