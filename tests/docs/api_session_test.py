#!/usr/bin/env python3
"""The curl sessions users copy: docs/api.md's "A complete session with curl" (with the seed
clients' flow after it), or the one on the server's own /docs page. The commands are taken from
the text itself, so editing the doc changes what runs. They run in one bash (variables carry over,
`set -o pipefail`) in a fresh directory holding a talk.mp4 made by ffmpeg, against a fresh
`vmp3 serve` on a free port (the doc's 127.0.0.1:8080 / localhost:8080 replaced by it), and each
step must do what the doc says: an account, a token, a job id, an event stream that ends with
"done", an MP3 of talk.mp4's length, the byte count of a range, 204 for the delete.

Usage: api_session_test.py api.md | docs-page"""

import html
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import docs_support as ds

CLIP_SECONDS = 3
ID = r"[a-z2-7]{26}"  # a job or user id (base32)
JWT = r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"
SESSION_BUDGET_S = 120


class Step:
    def __init__(self, command, expected=""):
        self.command = command  # as in the doc, continuation lines included
        self.expected = expected  # the output the doc shows ("" when none)
        self.output = ""  # its stdout: what the doc shows
        self.errors = ""  # its stderr, kept apart as on a terminal (curl's progress meter)
        self.status = None
        self.variables = {}  # what the shell variables it assigns hold afterwards

    def __repr__(self):
        return self.command.splitlines()[0]


def api_md_steps():
    """The `$ ` commands of the sh blocks of the curl section of docs/api.md, with the output the
    doc shows under each."""
    with open(os.path.join(ds.SOURCE_DIR, "docs", "api.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## A complete session with curl\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    ds.check(m, "docs/api.md has no '## A complete session with curl' section")
    steps = []
    for block in re.findall(r"^```sh\n(.*?)^```", m.group(1), re.M | re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            ds.check(line.startswith("$ ") or steps, f"docs/api.md: output before a command: {line}")
            if line.startswith("$ "):
                command = [line[2:]]
                while command[-1].endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command.append(lines[i])
                steps.append(Step("\n".join(command)))
            else:
                steps[-1].expected += line + "\n"
            i += 1
    return steps


def docs_page_steps(base):
    """The commands of the page's "A session with curl" (no prompts, no outputs shown)."""
    status, _, body = ds.http("GET", base + "/docs")
    ds.check(status == 200, f"GET /docs answered {status}")
    m = re.search(r"<h2>A session with curl</h2>\s*<pre>(.*?)</pre>", body.decode(), re.S)
    ds.check(m, "the /docs page has no 'A session with curl' <pre> block")
    steps, command = [], []
    for line in html.unescape(m.group(1)).splitlines():
        command.append(line)
        if not line.endswith("\\"):
            steps.append(Step("\n".join(command)))
            command = []
    return steps


def saves_mp3(command):
    """The step downloads the MP3 into talk.mp3 (curl -OJ names it after Content-Disposition)."""
    words = command.split()
    return "-OJ" in words or "--output talk.mp3" in command or "-o talk.mp3" in command


def assigned_variables(command):
    return re.findall(r"(?:^|[;&|]\s*)([A-Za-z_][A-Za-z0-9_]*)=", command)


def run_session(steps, workdir, port):
    """Runs the steps in one bash; fills each step's status, output and variables."""
    script = ["set -o pipefail", f"cd {shlex.quote(workdir)}"]
    for i, step in enumerate(steps):
        command = step.command.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        command = command.replace("localhost:8080", f"127.0.0.1:{port}")
        out = os.path.join(workdir, f".step{i}")
        if saves_mp3(command):
            # Each download must write its own file: an earlier one is moved out of the way
            # (nothing in the session reads it) and this one is kept for the checks.
            script.append(f"mv -f talk.mp3 {out}.before.mp3 2>/dev/null")
        script.append(f"echo {i} >{out}.started")
        # A group runs in this shell (assignments stay) and its redirection also catches the
        # stderr of command substitutions. stderr goes apart: with stdout not a terminal, curl
        # prints a progress meter there, which must not split the lines of the stdout.
        script.append(f"{{\n{command}\n}} >{out}.out 2>{out}.err </dev/null; "
                      f"echo $? >{out}.status")
        for name in assigned_variables(command):
            script.append(f"printf %s \"${name}\" >{out}.var.{name}")
        if saves_mp3(command):
            script.append(f"cp talk.mp3 {out}.mp3 2>/dev/null")
    started = time.monotonic()
    try:
        subprocess.run(["bash", "-c", "\n".join(script)], timeout=SESSION_BUDGET_S,
                       start_new_session=True)
    except subprocess.TimeoutExpired:
        pass  # the step that never finished is reported below
    for i, step in enumerate(steps):
        prefix = os.path.join(workdir, f".step{i}")
        ds.check(os.path.exists(prefix + ".started"), f"step {i} ({step!r}) never ran")
        with open(prefix + ".out", errors="replace") as f:
            step.output = f.read()
        with open(prefix + ".err", errors="replace") as f:
            step.errors = f.read()
        ds.check(os.path.exists(prefix + ".status"),
                 f"step {i} ({step!r}) did not finish within {SESSION_BUDGET_S} s "
                 f"of the session; its output so far:\n{step.output}\nstderr:\n{step.errors}")
        with open(prefix + ".status") as f:
            step.status = int(f.read())
        for name in assigned_variables(step.command):
            with open(f"{prefix}.var.{name}") as f:
                step.variables[name] = f.read()
    ds.log(f"{len(steps)} commands ran in {time.monotonic() - started:.1f} s")


def check_step(i, step, workdir, state):
    """What the doc says the step does, judged by what it is."""
    c = step.command
    what = f"`{step!r}`"
    ds.check(step.status == 0,
             f"{what} exited {step.status}:\n{step.output}\nstderr:\n{step.errors}")
    v = step.variables
    if "/v1/auth/register" in c:
        got = json.loads(step.output)
        ds.check(re.fullmatch(ID, got.get("id", "")), f"{what}: no user id in {got}")
        if step.expected.strip():
            shown = json.loads(step.expected)
            ds.check(set(got) == set(shown), f"{what} answered {got}, the doc shows {shown}")
            ds.check(got["username"] == shown["username"], f"{what} answered {got}")
        state["registered"] = True
    elif "TOKEN" in v:
        ds.check(re.fullmatch(JWT, v["TOKEN"]), f"{what}: TOKEN is {v['TOKEN']!r}, not a token")
        state["token"] = True
    elif "JOB" in v or "ID" in v:
        job = v.get("JOB", v.get("ID"))
        ds.check(re.fullmatch(ID, job), f"{what}: the job id is {job!r}:\n{step.output}")
        if "202 Accepted" in step.expected:
            shown = step.errors + step.output  # the doc's `curl -D /dev/stderr` headers
            ds.check("HTTP/1.1 202 Accepted" in shown and f"Location: /v1/jobs/{job}" in shown,
                     f"{what}: the doc shows a 202 with a Location; the output was:\n{shown}")
        state["job"] = job
    elif "/events" in c:
        events = re.findall(r"^event: (\w+)\ndata: (.*)$", step.output, re.M)
        ds.check(events, f"{what}: no events in:\n{step.output}\nstderr:\n{step.errors}")
        for name, data in events:
            ds.check(json.loads(data).get("id") == state.get("job"),
                     f"{what}: an event of another job: {data}")
        statuses = [json.loads(data)["status"] for name, data in events if name == "status"]
        ds.check(statuses and statuses[-1] == "done",
                 f"{what}: the stream ended with {statuses[-1:]}, not done:\n{step.output}")
        state["done"] = True
    elif saves_mp3(c):
        ds.check(os.path.exists(os.path.join(workdir, f".step{i}.mp3")),
                 f"{what} saved no talk.mp3:\n{step.output}")
        ds.check_mp3(os.path.join(workdir, f".step{i}.mp3"), CLIP_SECONDS)
        state["mp3s"] = state.get("mp3s", 0) + 1
    if step.expected.strip() and "…" not in step.expected and not step.expected.startswith("{") \
            and "202 Accepted" not in step.expected:
        ds.check(step.output.strip() == step.expected.strip(),
                 f"{what} printed {step.output.strip()!r}, the doc shows "
                 f"{step.expected.strip()!r}")


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    ds.check(which in ("api.md", "docs-page"), "usage: api_session_test.py api.md|docs-page")
    with ds.temp_dir("api-session") as tmp:
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        ds.make_clip(os.path.join(work, "talk.mp4"), CLIP_SECONDS)
        port = ds.free_port()
        marks = ds.MarkedProcesses()
        server, out = ds.start([ds.BINARY, "serve", "--listen", f"127.0.0.1:{port}",
                                "--data-dir", os.path.join(tmp, "data"), "--log-level", "warn"],
                               marks, prefix="  server| ")
        try:
            base = f"http://127.0.0.1:{port}"
            ds.wait_healthy(base, 30)
            steps = api_md_steps() if which == "api.md" else docs_page_steps(base)
            # `make run` is what started the server; here the test did.
            steps = [s for s in steps if not s.command.startswith("make run")]
            run_session(steps, work, port)
            state = {}
            for i, step in enumerate(steps):
                check_step(i, step, work, state)
                ds.log(f"ok: {step!r}")
            for key, what in (("registered", "registers"), ("token", "obtains a token"),
                              ("job", "uploads a job"), ("done", "follows its events to done"),
                              ("mp3s", "downloads the MP3")):
                ds.check(key in state, f"the session no longer {what}; the test expects it to")
        finally:
            server.send_signal(signal.SIGTERM)
            if ds.wait_exit(server, 30) is None:
                marks.kill_all()
                server.wait()


if __name__ == "__main__":
    ds.run_test(main)
