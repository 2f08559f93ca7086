"""The compose stack (compose.yaml) brought up the way `make compose-up` does it (scripts/compose),
on the local stand-ins of the infrastructure images (scripts/build-standins; the *_IMAGE variables
point at them), then used through the gateway like a client would:

1. every service runs (healthy where it has a check), the vmp3 containers with read-only root
   filesystems, and the only published port is the gateway's, on 127.0.0.1;
2. a whole conversion through the gateway: register, log in, upload a video, follow the events
   (SSE) to `done`, download the MP3 and decode it to the source's length;
3. /metrics of every role — both converter replicas — passes `promtool check metrics`, and the
   stack's Prometheus scrapes each of them: its HTTP API says `up` == 1 for every target and has
   a vmp3_ series from each;
3b. the notifier reads the stack's VAPID key (a compose secret), and through the gateway its
   webhooks are created, listed and refused as its egress policy says (the test opens plain
   http:// and the gateway's address only, with
   VMP3_EGRESS_ALLOW_HTTP and VMP3_EGRESS_ALLOW_CIDR): an IP literal of Redis is refused at
   registration (422); a test event to `redis` by name is refused when connecting (the attempt
   records the refusal, no status code); a test event to the gateway's address reaches it from
   the notifier's container (the gateway's access log shows the POST from that address, the
   attempt records the status code it answered);
4. a converter container is killed (`docker kill`, no restart follows) while it converts a long
   job, and the job still finishes exactly once, by the other converter. "Exactly once" is shown
   by every observer the system has:
   - the converters' logs: the killed one started attempt 1 and never finished; the survivor
     started attempt 2 and logged `done` once; no other `done` for the job anywhere;
   - the broker: the lifecycle exchange (vmp3.events, tapped through RabbitMQ's management API
     by a queue bound before the upload) carried job.started twice and job.done exactly once, no
     job.failed; afterwards every vmp3 queue is empty (nothing left to redeliver) and nothing
     was dead-lettered;
   - the survivor's vmp3_conversions_total{outcome="done"} rose by exactly one;
   - the client: the event stream's terminal status is `done`; the account lists
     exactly one job for the clip; its one MP3 decodes to the clip's length;
5. `scripts/compose down` (docker-compose down -v) leaves no container, network or volume of the
   project, the converters' anonymous spool volumes included.
Timings of each phase are printed.
"""

import ipaddress
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_support import (  # noqa: E402
    BUILD_DIR, Api, ApiError, CheckFailed, Docker, check, convert_through, decoded_seconds, engine_dir,
    free_port, log, require_tools, run, run_test, script, temp_dir, wait_until)

PROJECT = "vmp3-compose-test"
VMP3_IMAGE = "vmp3:latest"
ROLES = ("auth", "upload", "metadata", "download", "notifier")
# A job long enough to catch its converter mid-way (~10 s of LAME on a loaded 2-core machine);
# doubled if it still ends before the kill.
KILL_CLIP_SECONDS = 1200

timings = {}


def timed(name):
    """Context manager that records how long a phase took."""
    class Phase:
        def __enter__(self):
            self.started = time.monotonic()

        def __exit__(self, *exc):
            timings[name] = time.monotonic() - self.started
            return False
    return Phase()


def free_subnet(docker):
    """A /24 in 172.30.81-250.x that no network of the engine overlaps (so this test never
    collides with a stack `make compose-up` runs on 172.30.80.0/24)."""
    ids = docker("network", "ls", "-q").stdout.split()
    used = []
    for line in docker("network", "inspect", "--format",
                       "{{range .IPAM.Config}}{{.Subnet}} {{end}}", *ids).stdout.splitlines():
        used += [ipaddress.ip_network(s) for s in line.split() if "." in s]
    for third in range(81, 251):
        candidate = ipaddress.ip_network(f"172.30.{third}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise CheckFailed("no free /24 in 172.30.81-250.0/24 for the test's network")


class Stack:
    def __init__(self, docker, work, images):
        self.docker = docker
        self.port = free_port()
        subnet = free_subnet(docker)
        hosts = list(subnet.hosts())
        self.secrets = os.path.join(work, "secrets")
        self.env = dict(docker.env, COMPOSE_PROJECT_NAME=PROJECT, COMPOSE_PORT=str(self.port),
                        STATE_DIR=os.path.join(work, "state"), VMP3_SECRETS_DIR=self.secrets,
                        ENGINE_DIR=engine_dir(), BUILD_DIR=BUILD_DIR, VMP3_IMAGE=VMP3_IMAGE,
                        VMP3_SUBNET=str(subnet),
                        VMP3_ADDRESS_RANGE=str(ipaddress.ip_network(f"{hosts[127]}/25")),
                        VMP3_GATEWAY_ADDRESS=str(hosts[9]), VMP3_STANDINS="always",
                        # The notifier may call the gateway over plain HTTP (3b), nothing else
                        # private.
                        VMP3_EGRESS_ALLOW_CIDR=f"{hosts[9]}/32", VMP3_EGRESS_ALLOW_HTTP="true")
        self.gateway_address = str(hosts[9])
        self.env.update(images)
        self.api = Api(f"http://127.0.0.1:{self.port}")

    def compose(self, *args, timeout=900):
        return run([script("compose"), *args], env=self.env, timeout=timeout)

    def container(self, service, index=1):
        return f"{PROJECT}_{service}_{index}"

    def exec(self, service, *args, index=1, input_text=None):
        return self.docker("exec", "-i", self.container(service, index), *args,
                           input_text=input_text)

    def secret(self, file, key):
        with open(os.path.join(self.secrets, file)) as f:
            return dict(line.strip().split("=", 1) for line in f if "=" in line)[key]

    def project_objects(self):
        label = f"label=com.docker.compose.project={PROJECT}"
        return {kind: self.docker(*cmd, "--filter", label, "-q").stdout.split()
                for kind, cmd in (("containers", ("ps", "-a")), ("networks", ("network", "ls")),
                                  ("volumes", ("volume", "ls")))}


# ---- 1. The stack as deployed -------------------------------------------------------------------


def check_deployment(stack):
    docker = stack.docker
    services = ROLES + ("gateway", "rabbitmq", "redis", "s3", "prometheus")
    names = [stack.container(s) for s in services] + [stack.container("converter", 2)]
    roles = [stack.container(s) for s in ROLES] + [stack.container("converter", i)
                                                    for i in (1, 2)]

    def inspect():
        ids = stack.project_objects()["containers"]
        return {c["Name"].lstrip("/"): c for c in json.loads(docker("inspect", *ids).stdout)}

    def all_healthy():
        containers = inspect()
        for name in names:
            state = containers[name]["State"]
            check(state["Running"], f"{name} is not running: {state}")
            health = (state.get("Health") or {}).get("Status")
            check(health != "unhealthy", f"{name} is unhealthy: {state['Health']}")
            if health != "healthy":
                return None
        return containers

    # The gateway's first check runs one interval (5 s) after it started.
    containers = wait_until("every service is healthy", all_healthy, 30)
    for name in roles:
        check(containers[name]["HostConfig"]["ReadonlyRootfs"],
              f"{name} has a writable root filesystem")
    published = [(name, inside, b["HostIp"], b["HostPort"])
                 for name, c in containers.items()
                 for inside, bindings in (c["NetworkSettings"]["Ports"] or {}).items()
                 for b in bindings or []]
    check([(ip, port) for _, _, ip, port in published] == [("127.0.0.1", str(stack.port))],
          f"published ports: {published} (want only the gateway on 127.0.0.1:{stack.port})")
    init = containers[stack.container("s3-init")]["State"]
    check(init["Status"] == "exited" and init["ExitCode"] == 0, f"s3-init: {init}")
    log(f"{len(names)} services healthy; roles read-only; only 127.0.0.1:{stack.port} "
        "published; the bucket made by s3-init")


# ---- 3. Metrics and Prometheus ------------------------------------------------------------------


def metric_targets(stack):
    return [(role, stack.container(role)) for role in ROLES] + \
           [("converter", stack.container("converter", i)) for i in (1, 2)]


def check_metrics(stack):
    for role, name in metric_targets(stack):
        text = stack.docker("exec", name, "curl", "-fsS", "http://127.0.0.1:8080/metrics").stdout
        check("vmp3_" in text, f"{name}: /metrics has no vmp3_ metric")
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                              capture_output=True)
        check(lint.returncode == 0,
              f"promtool check metrics rejects {name}'s /metrics: {lint.stdout}{lint.stderr}")
    log("promtool check metrics accepts /metrics of every role and both converters")

    addresses = {}
    for role, name in metric_targets(stack):
        ip = stack.docker("inspect", "--format",
                          "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name).stdout
        addresses[f"{ip.strip()}:8080"] = (role, name)

    def query(expr):
        # The Prometheus HTTP API, from inside its container (BusyBox wget in the official image).
        url = "http://127.0.0.1:9090/api/v1/query?query=" + quote(expr, safe="")
        reply = json.loads(stack.exec("prometheus", "wget", "-q", "-O", "-", url).stdout)
        check(reply.get("status") == "success", f"Prometheus query {expr}: {reply}")
        return {r["metric"].get("instance"): r for r in reply["data"]["result"]}

    def all_scraped():
        up = query("up")
        series = query('count by (job, instance) ({__name__=~"vmp3_.+"})')
        for instance, (role, name) in addresses.items():
            if instance not in up or up[instance]["value"][1] != "1":
                raise CheckFailed(f"up of {name} ({instance}) is {up.get(instance)}")
            check(up[instance]["metric"]["job"] == role,
                  f"{instance} is scraped as job {up[instance]['metric']['job']}, not {role}")
            if instance not in series or int(series[instance]["value"][1]) < 1:
                raise CheckFailed(f"no vmp3_ series of {name} ({instance}) in Prometheus yet")
        return up

    wait_until("Prometheus scrapes every role", all_scraped, 90, interval=2)
    log(f"Prometheus: up == 1 and vmp3_ series for {len(addresses)} targets "
        "(auth, upload, metadata, download, notifier, 2 converters)")


# ---- 3b. The notifier ---------------------------------------------------------------------------


def container_address(stack, service):
    return stack.docker("inspect", "--format",
                        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                        stack.container(service)).stdout.strip()


def check_notifier(stack):
    # The Web Push key from the stack's secrets, readable by the notifier's user, same on every
    # start (the file in VMP3_SECRETS_DIR).
    pem = stack.exec("notifier", "cat", "/run/secrets/vapid_key").stdout
    with open(os.path.join(stack.secrets, "vapid-key")) as f:
        check(pem == f.read() and pem.startswith("-----BEGIN PRIVATE KEY-----"),
              "the notifier does not read the stack's VAPID key at /run/secrets/vapid_key")
    api = Api(stack.api.base)
    api.sign_up()
    redis = container_address(stack, "redis")
    try:
        api.json("POST", "/v1/webhooks", {"url": f"http://{redis}:6379/"})
        raise CheckFailed(f"a webhook to Redis' address {redis} was accepted")
    except ApiError as e:
        check("HTTP 422" in str(e), f"a webhook to Redis' address: {e}")

    def first_attempt(hook):
        def attempted():
            deliveries = api.json("GET", f"/v1/webhooks/{hook['id']}/deliveries")["deliveries"]
            attempts = [a for d in deliveries for a in d["attempts"]]
            return attempts[0] if attempts else None
        api.json("POST", f"/v1/webhooks/{hook['id']}/test")
        return wait_until(f"an attempt to deliver to {hook['url']}", attempted, 30, interval=0.5)

    # By name: the address is only known when connecting, where the policy refuses it.
    to_redis = api.json("POST", "/v1/webhooks", {"url": "http://redis:6379/", "events": []})
    refused = first_attempt(to_redis)
    # No HTTP status: no request was sent. (The API says null, or -1 for an attempt the egress
    # policy refused: what the attempt record holds today.)
    code = refused["status_code"]
    check((code is None or code < 100) and redis in (refused["error"] or ""),
          f"the attempt to reach redis ({redis}) by name: {refused}")

    probe = f"/webhook-probe-{uuid.uuid4().hex[:8]}"
    to_gateway = api.json("POST", "/v1/webhooks", {"url": f"http://gateway:8080{probe}"})
    check(to_gateway.get("secret", "").startswith("whsec_"), f"the endpoint: {to_gateway}")
    listed = [h["id"] for h in api.json("GET", "/v1/webhooks")["webhooks"]]
    check(sorted(listed) == sorted([to_redis["id"], to_gateway["id"]]),
          f"GET /v1/webhooks lists {listed}")
    attempt = first_attempt(to_gateway)
    check(isinstance(attempt["status_code"], int) and 100 <= attempt["status_code"] < 600,
          f"the attempt to reach the gateway: {attempt}")
    notifier = container_address(stack, "notifier")
    logs = stack.docker("logs", stack.container("gateway"))
    posts = [line for line in (logs.stdout + logs.stderr).splitlines()
             if f'"POST {probe} HTTP/1.1"' in line]
    check(len(posts) == 1 and posts[0].startswith(f"{notifier} "),
          f"the gateway's log of POST {probe} (the notifier is {notifier}): {posts}")
    log(f"notifier: webhooks created and listed through the gateway; Redis refused at "
        f"registration (422) and by name when connecting ({refused['error']}); "
        f"the test event reached the gateway from the notifier ({notifier}), answered "
        f"{attempt['status_code']}")


# ---- 4. A converter killed mid-job --------------------------------------------------------------


class LifecycleTap:
    """A queue bound to the vmp3.events topic exchange (job.#), through RabbitMQ's management API,
    from inside the upload container (curl; the credentials go through stdin)."""

    def __init__(self, stack):
        self.stack = stack
        self.queue = f"{PROJECT}-lifecycle-{uuid.uuid4().hex[:6]}"
        self.credentials = (f'user = "vmp3:{stack.secret("rabbitmq.env", "RABBITMQ_DEFAULT_PASS")}"'
                            "\n")

    def call(self, method, path, body):
        result = self.stack.exec(
            "upload", "curl", "-sS", "-f", "-K", "-", "-X", method,
            "-H", "content-type: application/json", "--data-binary", json.dumps(body),
            f"http://rabbitmq:15672/api{path}", input_text=self.credentials)
        return json.loads(result.stdout) if result.stdout.strip() else None

    def bind(self):
        self.call("PUT", f"/queues/%2F/{self.queue}", {"durable": False, "auto_delete": False})
        self.call("POST", f"/bindings/%2F/e/vmp3.events/q/{self.queue}", {"routing_key": "job.#"})

    def events(self, job_id):
        messages = self.call("POST", f"/queues/%2F/{self.queue}/get",
                             {"count": 10000, "ackmode": "ack_requeue_false", "encoding": "auto"})
        return [m["routing_key"] for m in messages
                if json.loads(m["payload"]).get("id") == job_id]

    def delete(self):
        self.stack.exec("upload", "curl", "-sS", "-K", "-", "-X", "DELETE",
                        f"http://rabbitmq:15672/api/queues/%2F/{self.queue}",
                        input_text=self.credentials)


def converter_logs(stack, index):
    result = stack.docker("logs", stack.container("converter", index))
    return result.stdout + result.stderr


def done_count(stack, index):
    text = stack.docker("exec", stack.container("converter", index), "curl", "-fsS",
                        "http://127.0.0.1:8080/metrics").stdout
    m = re.search(r'^vmp3_conversions_total\{outcome="done"\} (\d+)', text, re.M)
    return int(m.group(1)) if m else 0


def make_long_clip(path, seconds):
    # FLAC of a tone: seconds to make, ~12 KB per second of audio, and every sample goes
    # through LAME in the converter (no stream copy).
    run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
         "-af", "aformat=channel_layouts=stereo", "-c:a", "flac", path])
    return path


def kill_converter_mid_job(stack, work):
    api = Api(stack.api.base)
    api.sign_up()
    tap = LifecycleTap(stack)
    tap.bind()
    seconds = KILL_CLIP_SECONDS
    for _ in range(3):
        clip = make_long_clip(os.path.join(work, f"long-{seconds}.flac"), seconds)
        before = {i: done_count(stack, i) for i in (1, 2)}
        job = api.upload(clip)
        job_id = job["id"]
        # Follow the job's events from now on, as a client would, while the converter dies.
        stream = {}

        def follow():
            try:
                stream["events"] = api.events_until_end(job_id, timeout=600)
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                stream["error"] = e
        follower = threading.Thread(target=follow, daemon=True)
        follower.start()

        started_line = f"job {job_id}: converting (attempt 1)"
        victim = wait_until(f"a converter starts job {job_id}",
                            lambda: next((i for i in (1, 2)
                                          if started_line in converter_logs(stack, i)), None),
                            120, interval=0.2)
        # Mid-job: converting, some progress made, far from the end.
        state = wait_until(f"job {job_id} makes progress",
                           lambda: (lambda j: j if j["status"] in ("done", "failed", "cancelled")
                                    or (j["status"] == "converting" and j["progress"] >= 0.05)
                                    else None)(api.job(job_id)),
                           120, interval=0.2)
        if state["status"] == "converting" and state["progress"] < 0.8:
            break
        log(f"the {seconds} s job ended ({state['status']}, {state['progress']:.2f}) before the "
            "kill: trying a longer one")
        follower.join(60)
        seconds *= 2
    else:
        raise CheckFailed("could not catch a converter mid-job")

    victim_name = stack.container("converter", victim)
    survivor = 3 - victim
    stack.docker("kill", victim_name)
    killed_at = time.monotonic()
    log(f"killed {victim_name} at {state['progress']:.0%} of job {job_id} ({seconds} s of audio)")

    follower.join(600)
    check(not follower.is_alive(), f"the event stream of {job_id} did not end")
    if "error" in stream:
        raise stream["error"]
    events = stream["events"]
    finals = [e for e in events
              if e[0] == "status" and e[1].get("status") in ("done", "failed", "cancelled")]
    check(finals and finals[-1][1]["status"] == "done",
          f"terminal status on the event stream: {[e[1]['status'] for e in finals]}")
    log(f"job {job_id} done {time.monotonic() - killed_at:.1f} s after the kill "
        f"({len(events)} events followed)")

    state = stack.docker("inspect", "--format", "{{.State.Status}} {{.RestartCount}}",
                         victim_name).stdout.split()
    check(state == ["exited", "0"], f"{victim_name} is {state} (killed, not restarted)")
    victim_log, survivor_log = converter_logs(stack, victim), converter_logs(stack, survivor)
    check(f"job {job_id}: done" not in victim_log,
          f"the killed converter logged job {job_id} done")
    def job_lines(text):
        return [line for line in text.splitlines() if job_id in line]
    # The broker counts deliveries: the killed process's other, idle consumers may have been
    # handed the job and lost it in the same instant, so the takeover is attempt 2 or later.
    check(re.search(rf"job {job_id}: converting \(attempt [2-9]\)", survivor_log),
          f"converter {survivor} did not take job {job_id} over (attempt 2 or later): its lines "
          f"{job_lines(survivor_log)}, the killed one's {job_lines(victim_log)}")
    check(survivor_log.count(f"job {job_id}: done") == 1,
          f"converter {survivor} logged job {job_id} done "
          f"{survivor_log.count(f'job {job_id}: done')} times")
    after = done_count(stack, survivor)
    check(after == before[survivor] + 1,
          f"converter {survivor}'s done counter went {before[survivor]} -> {after}, not +1")

    lifecycle = tap.events(job_id)
    tap.delete()
    check(lifecycle.count("job.done") == 1 and lifecycle.count("job.started") == 2
          and "job.failed" not in lifecycle,
          f"lifecycle events of {job_id}: {lifecycle} (want job.started x2, job.done x1)")
    # The converter acknowledges the delivery after it recorded `done` (which the client saw
    # first), so the broker may still count it unacknowledged for a moment.
    def vmp3_queues():
        queues = json.loads(stack.exec("rabbitmq", "rabbitmqctl", "list_queues", "name",
                                       "messages_ready", "messages_unacknowledged",
                                       "--formatter", "json").stdout)
        return [q for q in queues if q["name"].startswith("vmp3.")]

    def drained():
        ours = vmp3_queues()
        check(any(q["name"] == "vmp3.convert" for q in ours), f"no vmp3.convert queue: {ours}")
        if any(q["messages_ready"] or q["messages_unacknowledged"] for q in ours):
            raise CheckFailed(f"vmp3 queues not empty after the job: {ours}")
        return ours
    ours = wait_until("the job's delivery is acknowledged", drained, 30, interval=1)

    items = api.json("GET", "/v1/jobs")["jobs"]
    check([j["status"] for j in items if j["id"] == job_id] == ["done"],
          f"the account's jobs: {items}")
    mp3 = api.download(job_id, os.path.join(work, job_id + ".mp3"))
    length = decoded_seconds(mp3)
    check(abs(length - seconds) < 0.1, f"the MP3 decodes to {length:.3f} s, the clip is {seconds}")
    log(f"exactly once: converter {victim} started it and died; converter {survivor} finished "
        f"it (attempt 2, one done in logs and metrics); broker: {lifecycle}; "
        f"{len(ours)} queues empty; "
        f"one MP3 of {length:.1f} s")


# ---- The test -----------------------------------------------------------------------------------


def main():
    require_tools("docker-compose", "promtool", "ffmpeg")
    docker = Docker()
    check(docker("image", "inspect", VMP3_IMAGE, check_rc=False).returncode == 0,
          f"{VMP3_IMAGE} is missing (the deploy.image test builds it)")
    with timed("stand-in images"):
        result = run([script("build-standins")], env=dict(docker.env, BUILD_DIR=BUILD_DIR),
                     timeout=1800)
    for line in result.stderr.splitlines():
        log(line)
    standins = dict(line.split("=", 1) for line in result.stdout.split())
    images = {f"{name.upper()}_IMAGE": tag for name, tag in standins.items()}
    check(set(images) == {"RABBITMQ_IMAGE", "REDIS_IMAGE", "S3_IMAGE", "PROMETHEUS_IMAGE",
                          "NGINX_IMAGE"}, f"build-standins printed {standins}")

    with temp_dir("compose") as work:
        stack = Stack(docker, work, images)
        # What a failed earlier run may have left under this project name.
        stack.compose("down", timeout=300)
        try:
            with timed("stack up"):
                out = stack.compose("up", timeout=900)
            check(f"http://127.0.0.1:{stack.port}/" in out.stdout,
                  f"compose up did not print the URL: {out.stdout}")
            with timed("conversion through the gateway"):
                job = convert_through(stack.api, work)
            log(f"job {job['id']} through the gateway: SSE to done, MP3 decoded")
            with timed("deployment checks"):
                check_deployment(stack)
            with timed("metrics and Prometheus"):
                check_metrics(stack)
            with timed("notifier"):
                check_notifier(stack)
            with timed("converter killed mid-job"):
                kill_converter_mid_job(stack, work)
        finally:
            if os.environ.get("VMP3_KEEP_TEMP") == "1":
                print(run([script("compose"), "docker-compose", "logs", "--tail", "50"],
                          env=stack.env, check_rc=False).stdout[-20000:])
            spool_volumes = []
            for index in (1, 2):
                spool_volumes += docker(
                    "inspect", "--format",
                    "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}",
                    stack.container("converter", index), check_rc=False).stdout.split()
            with timed("stack down"):
                stack.compose("down", timeout=300)
        left = stack.project_objects()
        check(not any(left.values()), f"left behind by compose down -v: {left}")
        gone = [v for v in spool_volumes
                if docker("volume", "inspect", v, check_rc=False).returncode == 0]
        check(not gone, f"the converters' spool volumes survived: {gone}")
        log(f"down: no container, network or volume of {PROJECT} left "
            f"({len(spool_volumes)} spool volumes removed too)")


if __name__ == "__main__":
    try:
        run_test(main)
    finally:
        if timings:
            log("timings: " + ", ".join(f"{n} {s:.1f} s" for n, s in timings.items()))
