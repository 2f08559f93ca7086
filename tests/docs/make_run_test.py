#!/usr/bin/env python3
"""README's `make run`: builds (a no-op when built), starts the server on embedded backends,
prints its URL, serves a healthy /healthz, and stops cleanly on Ctrl-C (SIGINT to the terminal's
process group) and on SIGTERM to make: make ends by that signal, the server logged its orderly
stop, the port is free again and no process the run started is left.

It also checks that the steps before the server (scripts/install-deps, the build) are fast
no-ops when everything is installed and built."""

import os
import signal
import subprocess
import time

import docs_support as ds

# install-deps and an up-to-date build together take well under a second; this bound only
# catches a real install or rebuild.
STARTUP_BUDGET_S = 20


def run_once(stop_signal, to_group, data_dir):
    port = ds.free_port()
    marks = ds.MarkedProcesses()
    command = ["make", "--no-print-directory", "-C", ds.SOURCE_DIR, "run",
               f"BUILD_DIR={ds.BUILD_DIR}", f"LISTEN=127.0.0.1:{port}", f"DATA_DIR={data_dir}"]
    how = "Ctrl-C (SIGINT to the process group)" if to_group else f"signal {stop_signal} to make"
    ds.log(f"make run on port {port}, stopped by {how}")
    started = time.monotonic()
    proc, out = ds.start(command, marks, prefix="  | ")
    try:
        url = f"http://127.0.0.1:{port}/"
        m = out.wait_for(r"vmp3 listening on (http://\S+)", STARTUP_BUDGET_S)
        ds.check(m is not None, f"make run printed no 'vmp3 listening on' line within "
                                f"{STARTUP_BUDGET_S} s:\n{out.text()}")
        ds.check(m.group(1) == url, f"make run printed {m.group(1)}, expected {url}")
        up = time.monotonic() - started
        health = ds.wait_healthy(url.rstrip("/"), 10)
        ds.check(health.get("status") == "ok", f"/healthz answered {health}")
        ds.check(os.path.isdir(data_dir) and os.listdir(data_dir),
                 f"the server keeps nothing in DATA_DIR={data_dir}")
        ds.log(f"up and healthy after {up:.2f} s")
        server = marks.snapshot()
        ds.check(any("vmp3 serve" in cmd for _, cmd in server.values()),
                 f"no vmp3 serve process among those make run started: {server}")

        stopping = time.monotonic()
        if to_group:
            os.killpg(proc.pid, stop_signal)
        else:
            proc.send_signal(stop_signal)
        status = ds.wait_exit(proc, 30)
        ds.check(status is not None, f"make run still runs 30 s after {how}")
        ds.log(f"stopped in {time.monotonic() - stopping:.2f} s, make's status {status}")
        # make reports the interruption by dying of the same signal, as a shell expects.
        ds.check(status == -stop_signal, f"make run ended with status {status}, expected to "
                                         f"die of signal {stop_signal}")
        out.wait_closed(5)
        ds.check(out.wait_for(r"\[info\] stopped$", 0) is not None,
                 f"the server did not log its orderly stop:\n{out.text()}")
        ds.check(ds.port_is_free(port), f"port {port} is still taken after the stop")
        left = marks.alive(server)
        left.update(marks.snapshot())
        ds.check(not left, f"processes left after the stop: {left}")
        return up
    finally:
        if proc.poll() is None:
            marks.kill_all()
            proc.wait()


def check_install_deps_is_a_no_op(tmp):
    """With every package present, scripts/install-deps must neither need root nor call apt-get:
    stand-ins for sudo and apt-get that fail loudly prove it."""
    stubs = os.path.join(tmp, "stubs")
    os.makedirs(stubs)
    called = os.path.join(tmp, "called")
    for name in ("sudo", "apt-get"):
        with open(os.path.join(stubs, name), "w") as f:
            f.write(f"#!/bin/sh\necho {name} \"$@\" >>{called}\nexit 99\n")
        os.chmod(os.path.join(stubs, name), 0o755)
    env = ds.user_env(PATH=stubs + os.pathsep + os.environ["PATH"])
    for args in ([], ["--with-servers"]):
        started = time.monotonic()
        done = subprocess.run([os.path.join(ds.SOURCE_DIR, "scripts", "install-deps"), *args],
                              env=env, capture_output=True, text=True)
        took = time.monotonic() - started
        ds.log(f"scripts/install-deps {' '.join(args)}: exit {done.returncode} in {took:.2f} s")
        if os.path.exists(called):
            with open(called) as f:
                raise ds.CheckFailed(f"install-deps {args} ran {f.read().strip()} although "
                                     f"every package is installed (or install-deps "
                                     f"--with-servers had not run before this test)")
        ds.check(done.returncode == 0, f"install-deps {args} failed: {done.stderr}")
        ds.check(took < 5, f"install-deps {args} took {took:.1f} s with nothing to install")


def main():
    ds.require_build_up_to_date()
    with ds.temp_dir("make-run") as tmp:
        check_install_deps_is_a_no_op(tmp)
        data_dir = os.path.join(tmp, "data")
        run_once(signal.SIGINT, True, data_dir)
        run_once(signal.SIGTERM, False, data_dir)  # again on the same data: a restart works


if __name__ == "__main__":
    ds.run_test(main)
