"""The Kubernetes Deployments of deploy/k8s run under `podman kube play`, and a conversion goes
through them: no Kubernetes control plane can run on these machines, podman can.

What runs is the overlay deploy/k8s/overlays/podman-test (the base's Deployments with only what
podman cannot do changed, each change explained there), rendered with `kubectl kustomize` from a
copy of deploy/k8s in which this test writes the run's ports and object store URL. The pods use
the host's network and reach the real RabbitMQ, Redis and Ceph RGW of scripts/test-servers on
127.0.0.1 (those VMP3_TEST_SERVERS_DIR names, or servers of its own under the build tree, stopped
again); nginx with deploy/nginx's template stands where the Ingress would, on 127.0.0.1.

Checked: every role's pods start (the converter's two replicas as two pods), with the security
context, limits, mounts and host network the manifests ask for, as the kernel sees the processes;
each role listens on its port and answers /healthz and /readyz; the HTTP roles' liveness probes,
as podman turns them into healthchecks, pass; one user signs up, uploads, follows the job over
SSE, downloads the MP3 and decodes it to the source's length, and exactly one converter pod did
the job; the notifier pod delivers the job's `job.done` to the webhook the user registered (a
receiver of this test on 127.0.0.1, which the overlay's egress settings allow), signed as Standard
Webhooks says, with absolute links from VMP3_PUBLIC_URL; every role exits 0 on SIGTERM. Afterwards nothing of the run is left: no pod, container,
volume or secret, none of the processes (by PID), and the host's networking (iptables rules,
sysctls such as ip_forward, interfaces) and podman state are as they were.

podman keeps all of its state under BUILD_DIR/deploy/podman (storage, run root, locks, events,
network configurations, its containers.conf), never the host's /var/lib/containers, /run/libpod
or /etc/cni/net.d; the image moves in with `docker save vmp3:latest | podman load` (skipped when
podman already holds that image). Exit 77 when podman is not installed.
"""

import base64
import concurrent.futures
import contextlib
import ipaddress
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_support import (BUILD_DIR, SKIPPED, SOURCE_DIR, Api, Docker,  # noqa: E402
                            WebhookReceiver, check, convert_through, free_port, link_names, log,
                            parse_exports, require_tools, run, run_test, script, temp_dir,
                            wait_until)

IMAGE = "vmp3:latest"
# The name `podman load` gives the image of `docker save vmp3:latest`; the overlay runs it.
PODMAN_IMAGE = "localhost/vmp3:latest"
K8S_DIR = os.path.join(SOURCE_DIR, "deploy", "k8s")
OVERLAY = os.path.join("overlays", "podman-test")
ROLES_DIR = os.path.join(K8S_DIR, "base", "roles")
# The roles are base/roles' directories; those with a Service serve HTTP (each on its own port
# here), the others (the converter) listen where the kernel puts them.
ROLES = sorted(os.listdir(ROLES_DIR)) if os.path.isdir(ROLES_DIR) else []
HTTP_ROLES = [r for r in ROLES if os.path.exists(os.path.join(ROLES_DIR, r, "service.yaml"))]
# What podman would create or use on the host if its configuration did not point elsewhere.
HOST_PODMAN_PATHS = ("/var/lib/containers", "/run/containers", "/run/libpod", "/etc/cni/net.d",
                     "/dev/shm/libpod_lock")
# containers/image keeps a cache of blob digests for root in this fixed place, whatever the
# storage root (podman has no setting for it): `podman load` creates it when it is missing.
BLOB_INFO_CACHE = "/var/lib/containers/cache"
LISTENING = re.compile(r"^vmp3 listening on http://127\.0\.0\.1:(\d+)/$", re.M)


class Phases:
    """Wall-clock time of each phase, logged as it ends and summed up at the end."""

    def __init__(self):
        self.times = []

    @contextlib.contextmanager
    def __call__(self, name):
        started = time.monotonic()
        try:
            yield
        finally:
            self.times.append((name, time.monotonic() - started))
            log(f"phase {name}: {self.times[-1][1]:.1f} s")

    def summary(self):
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.times)


# ---- podman with a state of its own -----------------------------------------------------------


class Podman:
    """The podman client with every piece of its state under `root`: storage and run root
    (CONTAINERS_STORAGE_CONF), and through CONTAINERS_CONF the engine's tmp dir (locks, events,
    exit files), the network configurations, file locks instead of /dev/shm, cgroupfs instead of
    systemd units, logs in files instead of the journal. conmon passes CONTAINERS_CONF on to the
    `podman container cleanup` it runs when a container exits, so that uses the same state."""

    def __init__(self, root):
        self.root = root
        for sub in ("storage", "runroot", "tmp", "networks"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        # podman asks for nofile and nproc of 1048576, beyond the hard limits here, and raising a
        # hard limit needs CAP_SYS_RESOURCE: ask for what the host allows (at most 16384).
        limits = []
        for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
            hard = resource.getrlimit(which)[1]
            value = 16384 if hard == resource.RLIM_INFINITY else min(16384, hard)
            limits.append(f'"{name}={value}:{value}"')
        containers_conf = os.path.join(root, "containers.conf")
        with open(containers_conf, "w") as f:
            f.write(f"""# Written by tests/deploy/podman_test.py: podman's state under {root}.
[containers]
default_ulimits = [{", ".join(limits)}]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "{root}/tmp"
image_copy_tmp_dir = "{root}/tmp"
[network]
network_config_dir = "{root}/networks"
""")
        storage_conf = os.path.join(root, "storage.conf")
        with open(storage_conf, "w") as f:
            f.write(f"""[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/runroot"
""")
        self.env = dict(os.environ, CONTAINERS_CONF=containers_conf,
                        CONTAINERS_STORAGE_CONF=storage_conf)

    def __call__(self, *args, check_rc=True, timeout=300):
        return run(["podman", *args], check_rc=check_rc, timeout=timeout, env=self.env)

    def version(self):
        text = self("version", "--format", "{{.Client.Version}}").stdout.strip()
        return tuple(int(x) for x in re.findall(r"\d+", text)[:2])

    def names(self, *args):
        """The names `podman ARGS --format {{.Name}}` lists (pods, volumes, secrets...)."""
        out = self(*args, "--format", "{{.Name}}").stdout
        return sorted(line for line in out.split() if line)

    def containers(self):
        return sorted(self("ps", "--all", "--format", "{{.Names}}").stdout.split())

    def inspect(self, *containers):
        """`podman container inspect` of the containers: dicts (Name, State, HostConfig...)."""
        return json.loads(self("container", "inspect", *containers).stdout)

    def remove_everything(self):
        """Pods, containers, volumes and secrets: what an earlier run that died may have left in
        this storage (no one else uses it). Images stay."""
        self("pod", "rm", "--all", "--force", check_rc=False)
        self("rm", "--all", "--force", check_rc=False)
        self("volume", "rm", "--all", "--force", check_rc=False)
        for name in self.names("secret", "ls"):
            self("secret", "rm", name)


# ---- the host's state, before and after -------------------------------------------------------


def host_podman_state():
    """Which of the host's podman paths exist, with the names in each directory."""
    state = {}
    for path in HOST_PODMAN_PATHS + (BLOB_INFO_CACHE,):
        if os.path.isdir(path):
            state[path] = sorted(os.listdir(path))
        elif os.path.lexists(path):
            state[path] = "file"
    return state


def remove_blob_info_cache(before):
    """Removes podman's blob info cache (and /var/lib/containers) if this run created it."""
    if os.path.exists(BLOB_INFO_CACHE) and BLOB_INFO_CACHE not in before:
        created = BLOB_INFO_CACHE if "/var/lib/containers" in before else "/var/lib/containers"
        shutil.rmtree(created)
        log(f"removed {created}: podman's blob info cache, made by this run")


# Rules and chains that name Docker's chains or bridges. The Docker engine is shared (other tests
# and users of the machine create and remove networks while this test runs) and what it does is
# not podman's: neither compared nor ever put back here (putting back the rules of a network
# created meanwhile would cut its containers off).
DOCKER_NAMES = re.compile(r"DOCKER|docker0|\bbr-[0-9a-f]{12}\b")
# podman's: CNI's and netavark's chains, podman's bridges.
PODMAN_NAMES = re.compile(r"CNI-|NETAVARK|podman", re.I)
# The subnet of podman's network `podman` (built in; the others are in its network_config_dir).
PODMAN_DEFAULT_SUBNET = "10.88.0.0/16"


def iptables_state(family, saved_file=None):
    """{(table, entry)} of `FAMILY-save` output (live, or the file scripts/host-network saved):
    rules ("-A CHAIN ...") and chains (":CHAIN POLICY", counters dropped)."""
    if saved_file:
        with open(saved_file) as f:
            text = f.read()
    else:
        text = subprocess.run([f"{family}-save"], capture_output=True, text=True).stdout
    state, table = set(), None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            state.add((table, " ".join(line.split()[:2])))
        elif line.startswith("-A "):
            state.add((table, line))
    return state


def addresses(entry):
    """The addresses and networks an iptables rule names."""
    found = []
    for token in entry.split():
        for candidate in (token, token.rsplit(":", 1)[0]):  # "--to-destination 172.17.0.2:8080"
            with contextlib.suppress(ValueError):
                found.append(ipaddress.ip_network(candidate, strict=False))
                break
    return found


def within(entry, subnets):
    return any(a.version == s.version and a.subnet_of(s) for a in addresses(entry) for s in subnets)


def docker_subnets(docker):
    ids = docker("network", "ls", "--quiet").stdout.split()
    out = docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
                 *ids).stdout if ids else ""
    return {ipaddress.ip_network(s) for s in out.split()}


def podman_subnets(podman):
    subnets = {ipaddress.ip_network(PODMAN_DEFAULT_SUBNET)}
    networks = os.path.join(podman.root, "networks")
    for name in os.listdir(networks):
        if name.endswith((".conflist", ".json")):
            with open(os.path.join(networks, name)) as f:
                text = f.read()
            subnets |= {ipaddress.ip_network(s) for s in re.findall(r'"subnet": *"([^"]+)"', text)}
    return subnets


class HostNetwork:
    """The host's networking as `scripts/host-network save` records it (iptables and ip6tables
    rules, ip_forward and the other sysctls container engines turn on, the interfaces), saved
    before podman runs and compared afterwards, Docker's part left out."""

    def __init__(self, directory, docker):
        self.dir = directory
        self.docker = docker
        run([script("host-network"), "save", directory])
        self.docker_subnets = docker_subnets(docker)

    def put_back_changes(self, podman):
        """What changed since the save, described; empty when nothing did. podman's changes are
        put back: its rules and chains, the sysctls, its bridges. Others' (neither podman's nor
        Docker's, which are not compared) are only reported."""
        docker_nets = self.docker_subnets | docker_subnets(self.docker)
        podman_nets = podman_subnets(podman)
        changes = []
        for family in ("iptables", "ip6tables"):
            saved = os.path.join(self.dir, family + ".rules")
            if not os.path.exists(saved) or not shutil.which(family):
                continue
            before, now = iptables_state(family, saved), iptables_state(family)
            ours, others = {"added": [], "removed": []}, []
            for how, entries in (("added", now - before), ("removed", before - now)):
                for table, entry in sorted(entries):
                    if PODMAN_NAMES.search(entry) or within(entry, podman_nets):
                        ours[how].append((table, entry))
                    elif not (DOCKER_NAMES.search(entry) or within(entry, docker_nets)):
                        others.append(f"{how} {table}: {entry}")
            if ours["added"] or ours["removed"]:
                changes.append(f"{family}, podman's (put back): {ours}")
            if others:
                changes.append(f"{family}, not podman's (left as they are): {others}")
            ipt = lambda table, *args: run([family, "-t", table, *args], check_rc=False)  # noqa
            for table, entry in ours["added"]:  # rules, then the chains they were in
                if entry.startswith("-A "):
                    ipt(table, "-D", *shlex.split(entry)[1:])
            for table, entry in ours["added"]:
                if entry.startswith(":") and entry.endswith(" -"):  # not a built-in chain
                    ipt(table, "-F", entry[1:-2])
                    ipt(table, "-X", entry[1:-2])
            for table, entry in ours["removed"]:
                if entry.startswith(":"):
                    name, policy = entry[1:].split()
                    if policy == "-":
                        ipt(table, "-N", name)
                    else:
                        ipt(table, "-P", name, policy)
            for table, entry in ours["removed"]:
                if entry.startswith("-A "):
                    ipt(table, *shlex.split(entry))
        with open(os.path.join(self.dir, "sysctl")) as f:
            for key, value in (line.split() for line in f if line.strip()):
                with open(f"/proc/sys/{key}") as g:
                    now = g.read().strip()
                if now != value:
                    changes.append(f"{key} was {value}, is {now} (put back)")
                    with open(f"/proc/sys/{key}", "w") as g:
                        g.write(value)
        with open(os.path.join(self.dir, "links")) as f:
            links_before = set(f.read().split())
        for link in sorted(n for n in link_names() - links_before if n.startswith(("podman", "cni"))):
            changes.append(f"new interface {link} (deleted)")
            run(["ip", "link", "delete", link], check_rc=False)
        return changes


# ---- the test servers --------------------------------------------------------------------------


def servers_env(directory):
    return parse_exports(run([script("test-servers"), "env", directory]).stdout)


@contextlib.contextmanager
def test_servers():
    """The servers of $VMP3_TEST_SERVERS_DIR (`make test` starts them), or servers of our own under
    the build tree, stopped (by their PIDs: scripts/test-servers) when done."""
    given = os.environ.get("VMP3_TEST_SERVERS_DIR")
    if given:
        log(f"test servers: {given}")
        yield servers_env(given)
        return
    own = os.path.join(BUILD_DIR, "deploy", "podman", "servers")
    os.makedirs(own, exist_ok=True)
    started = run([script("test-servers"), "start", own], check_rc=False, timeout=300)
    if started.returncode == SKIPPED:
        print(started.stderr, file=sys.stderr)
        sys.exit(SKIPPED)
    try:
        check(started.returncode == 0, f"scripts/test-servers start failed:\n{started.stderr}")
        log(f"test servers of our own: {own}")
        yield servers_env(own)
    finally:
        run([script("test-servers"), "stop", own], timeout=120)


def with_query(url, query):
    return url + ("&" if "?" in url else "?") + query


# ---- the manifests -----------------------------------------------------------------------------


def documents(text):
    """(kind, name, document text) of every document of a multi-document YAML text as kustomize
    prints it (keys sorted, two-space indentation)."""
    docs = []
    for doc in re.split(r"^---$", text, flags=re.M):
        kind = re.search(r"^kind: (\S+)$", doc, re.M)
        meta = re.search(r"^metadata:\n((?:  .*\n|\s*\n)*)", doc + "\n", re.M)
        name = re.search(r"^  name: (\S+)$", meta.group(1), re.M) if meta else None
        if kind and name:
            docs.append((kind.group(1), name.group(1), doc))
    return docs


def quantity(text):
    """A Kubernetes quantity ("384Mi", "1", "500m") as a number."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3, "": 1}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text.strip('"')).groups()
    return float(number) * units[unit]


def render(work, ports, storage_url, public_url):
    """`kubectl kustomize` of the podman-test overlay in a copy of deploy/k8s whose run/ holds this
    run's values. Returns the YAML text."""
    k8s = os.path.join(work, "k8s")
    skip = {os.path.join(K8S_DIR, OVERLAY, "run"),
            os.path.join(K8S_DIR, "overlays", "minikube", "secrets")}
    shutil.copytree(K8S_DIR, k8s, ignore=lambda d, names: [n for n in names
                                                           if os.path.join(d, n) in skip])
    run_dir = os.path.join(k8s, OVERLAY, "run")
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "ports.env"), "w") as f:
        f.writelines(f"{role}={port}\n" for role, port in ports.items())
    with open(os.path.join(run_dir, "config.env"), "w") as f:
        f.write(f"VMP3_STORAGE={storage_url}\nVMP3_PUBLIC_URL={public_url}\n")
    text = run(["kubectl", "kustomize", os.path.join(k8s, OVERLAY)]).stdout
    with open(os.path.join(work, "vmp3.yaml"), "w") as f:
        f.write(text)
    return text


def referenced_secrets(text):
    """The Secrets the rendered pods name: secretKeyRef env and secret volumes."""
    names = set(re.findall(r"secretKeyRef:\n\s+key: \S+\n\s+name: (\S+)", text))
    names |= set(re.findall(r"secretName: (\S+)", text))
    return names


def create_secrets(podman, work, servers, prefix, podman_version, wanted):
    """The Secrets the base references, as podman secrets in the formats podman 4.3 reads
    (deploy/k8s/overlays/podman-test/kustomization.yaml): flat JSON of base64 values for env,
    a Secret's `data` for the key volumes (the signing key, the VAPID key). Files are private and
    removed at once."""
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    env_secrets = {
        "vmp3-rabbitmq": {"url": with_query(servers["VMP3_TEST_AMQP_URL"], f"prefix={prefix}")},
        "vmp3-redis": {"url": with_query(servers["VMP3_TEST_REDIS_URL"], f"prefix={prefix}")},
        "vmp3-s3": {"access-key-id": servers["AWS_ACCESS_KEY_ID"],
                    "secret-access-key": servers["AWS_SECRET_ACCESS_KEY"]},
    }
    # The auth role's signing key file: base64 of a 32-byte Ed25519 seed and a newline. podman
    # before 4.4 writes a secret volume's `data` values as they are (containers/podman#16625).
    key = base64.b64encode(os.urandom(32)).decode() + "\n"
    # The notifier's VAPID key (Web Push): a P-256 private key, PEM.
    vapid = run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                 "ec_paramgen_curve:P-256"]).stdout
    payloads = {name: {k: b64(v) for k, v in data.items()} for name, data in env_secrets.items()}
    for name, file, value in (("vmp3-jwt-key", "jwt-ed25519.key", key),
                              ("vmp3-vapid-key", "vapid-p256.pem", vapid)):
        payloads[name] = {"data": {file: value if podman_version < (4, 4) else b64(value)}}
    check(set(payloads) == wanted, f"the manifests reference the Secrets {sorted(wanted)}, "
          f"this test makes {sorted(payloads)}")
    for name, payload in payloads.items():
        path = os.path.join(work, name + ".json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
        try:
            podman("secret", "create", name, path)
        finally:
            os.remove(path)


# ---- the gateway -------------------------------------------------------------------------------


@contextlib.contextmanager
def gateway(work, ports, listen):
    """nginx on `listen` (127.0.0.1:PORT) with deploy/nginx/vmp3.conf.template (the Ingress's
    routes), in the foreground as our child: stopped by its PID. Yields its base URL."""
    directory = os.path.join(work, "nginx")
    os.makedirs(os.path.join(directory, "logs"))
    # nginx's workers run as nobody: they must reach their temp paths below.
    os.chmod(work, 0o711)
    with open(os.path.join(SOURCE_DIR, "deploy", "nginx", "vmp3.conf.template")) as f:
        routes = f.read().replace("${VMP3_GATEWAY_LISTEN}", listen)
    for role in HTTP_ROLES:
        routes = routes.replace(f"${{VMP3_{role.upper()}_UPSTREAM}}", f"127.0.0.1:{ports[role]}")
    check("${VMP3_" not in re.sub(r"#.*", "", routes), f"placeholders left in the routes:\n{routes}")
    with open(os.path.join(directory, "routes.conf"), "w") as f:
        f.write(routes)
    conf = os.path.join(directory, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {directory}/logs/access.log;
  client_body_temp_path {directory}/body;
  proxy_temp_path {directory}/proxy;
  include {directory}/routes.conf;
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", directory], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://{listen}"
        wait_until("the gateway answers", lambda: nginx.poll() is None and
                   run(["curl", "-fsS", "-o", "/dev/null", url + "/healthz"],
                       check_rc=False).returncode == 0, 10, interval=0.1)
        yield url
    finally:
        nginx.terminate()
        try:
            nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
        stderr = nginx.stderr.read().decode()
        if stderr.strip():
            log(f"nginx: {stderr.strip()[-500:]}")


# ---- the pods ----------------------------------------------------------------------------------


def get(url):
    return run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", url],
               check_rc=False).stdout.strip()


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def check_container(info, doc, role):
    """What the Deployment `doc` asks of the container (`podman inspect` of it), as podman set it
    up and as the kernel applies it to the process."""
    name, host = info["Name"], info["HostConfig"]
    check(info["RestartCount"] == 0, f"{name} restarted {info['RestartCount']} times")
    status = proc_status(info["State"]["Pid"])
    check(status["Uid"].split()[:2] == ["10001", "10001"] and
          status["Gid"].split()[:2] == ["10001", "10001"],
          f"{name} runs as uid {status['Uid']} gid {status['Gid']}, not 10001")
    check(int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0,
          f"{name} keeps capabilities: effective {status['CapEff']}, bounding {status['CapBnd']}")
    check(status["NoNewPrivs"] == "1", f"{name} may gain privileges (NoNewPrivs 0)")
    check(status["Seccomp"] == "2", f"{name} has no seccomp filter (Seccomp {status['Seccomp']})")
    check(host["ReadonlyRootfs"] is True, f"{name}: the root filesystem is writable")
    check(host["NetworkMode"] == "host", f"{name}: network {host['NetworkMode']}, not the host's")
    limits = dict(re.findall(r"(\S+): (\S+)",
                             re.search(r"limits:\n((?:\s+\S+: \S+\n)+)", doc).group(1)))
    check(host["Memory"] == quantity(limits["memory"]),
          f"{name}: memory limit {host['Memory']}, the manifest says {limits['memory']}")
    cpus = host["CpuQuota"] / host["CpuPeriod"] if host["CpuPeriod"] else 0
    check(abs(cpus - quantity(limits["cpu"])) < 1e-6,
          f"{name}: {cpus} CPUs, the manifest says {limits['cpu']}")
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    for path in ("/data", "/tmp"):
        check(path in mounts and mounts[path]["RW"], f"{name}: no writable {path}: {mounts}")
    key_dirs = {"auth": "/etc/vmp3/jwt", "notifier": "/etc/vmp3/vapid"}
    if role in key_dirs:
        key = mounts.get(key_dirs[role])
        check(key and not key["RW"], f"{name}: its key is not mounted read-only at {key_dirs[role]}")


class KubePlay:
    """The run of the rendered manifests under `podman kube play`: its pods, their containers'
    ports and PIDs."""

    def __init__(self, podman, manifest, docs, ports):
        self.podman = podman
        self.manifest = manifest
        self.deployments = {name: doc for kind, name, doc in docs if kind == "Deployment"}
        self.ports = ports  # HTTP role -> port
        self.pods = {}  # Deployment -> its pods
        self.endpoints = {}  # container -> the port it listens on
        self.pids = {}  # "container's process" -> PID, for every container's process and conmon
        self.up = False

    def containers(self):
        """role -> the vmp3 containers of its pods."""
        return {name.removeprefix("vmp3-"): [f"{pod}-vmp3" for pod in pods]
                for name, pods in self.pods.items()}

    def play(self):
        self.up = True
        result = self.podman("kube", "play", self.manifest, timeout=300)
        # podman 4.3 runs every replica (pods NAME-pod-0, NAME-pod-1, ...); later versions run
        # one (pod NAME-pod) and say so.
        limited = "Limiting replica count to 1" in result.stderr
        running = self.podman.names("pod", "ps")
        for name, doc in self.deployments.items():
            replicas = re.search(r"^  replicas: (\d+)$", doc, re.M)
            wanted = 1 if limited or not replicas else int(replicas.group(1))
            pods = [p for p in running if re.fullmatch(rf"{name}-pod(-\d+)?", p)]
            check(len(pods) == wanted, f"{name}: {wanted} replicas wanted, podman runs {pods}")
            self.pods[name] = pods
        for info in self.podman.inspect(*self.podman.containers()):
            self.pids[f"{info['Name']}'s process"] = info["State"]["Pid"]
            self.pids[f"{info['Name']}'s conmon"] = info["State"]["ConmonPid"]
        if limited:
            log("podman limits every Deployment to one replica")

    def wait_ready(self):
        """Every role's container listens (the HTTP roles on their ports) and answers /healthz
        and /readyz, runs as the manifest says, and the HTTP roles' healthchecks pass."""
        for role, containers in self.containers().items():
            for container in containers:
                port = wait_until(f"{container} listens", lambda: self.listening_port(container),
                                  120)
                check(role not in self.ports or port == self.ports[role],
                      f"{container} listens on {port}, not on its port {self.ports.get(role)}")
                self.endpoints[container] = port
        for container, port in self.endpoints.items():
            for path in ("/healthz", "/readyz"):
                wait_until(f"{container} answers {path}",
                           lambda: get(f"http://127.0.0.1:{port}{path}") == "200", 60)
        for info in self.podman.inspect(*self.endpoints):
            role = info["Name"].split("-")[1]
            check_container(info, self.deployments[f"vmp3-{role}"], role)
        # The HTTP roles' liveness probes, as podman turned them into healthchecks (which it runs
        # only when asked here: on its own it would need systemd timers). At once: each takes
        # half a second.
        http = [c for c in self.endpoints if c.split("-")[1] in self.ports]
        with concurrent.futures.ThreadPoolExecutor() as pool:
            list(pool.map(lambda c: self.podman("healthcheck", "run", c), http))

    def listening_port(self, container):
        match = LISTENING.search(self.podman("logs", container).stdout)
        return int(match.group(1)) if match else None

    def converted_by(self, job_id):
        """The converter containers whose log says they converted the job."""
        return [c for c in self.containers()["converter"]
                if f"job {job_id}: done" in self.podman("logs", c).stdout]

    def stop(self):
        """SIGTERM to every pod (every role must exit 0: it drained), kube down, then the volumes
        and secrets podman keeps; checks that no pod, container, volume, secret or process of the
        run is left. Returns what kube down left for us to remove."""
        self.podman("pod", "stop", "--time", "40", *[p for ps in self.pods.values() for p in ps])
        codes = {i["Name"]: i["State"]["ExitCode"] for i in self.podman.inspect(*self.endpoints)}
        check(set(codes.values()) == {0}, f"exit codes on SIGTERM: {codes}")
        self.podman("kube", "down", self.manifest, timeout=120)
        self.up = False
        left = {"pods": self.podman.names("pod", "ps"), "containers": self.podman.containers(),
                "volumes": self.podman.names("volume", "ls"),
                "secrets": self.podman.names("secret", "ls")}
        check(not left["pods"] and not left["containers"],
              f"podman kube down left {left['pods']} {left['containers']}")
        # podman 4.3 keeps the secret volume (named after its Secret); the secrets are ours.
        if left["volumes"]:
            self.podman("volume", "rm", *left["volumes"])
        if left["secrets"]:
            self.podman("secret", "rm", *left["secrets"])
        check(not self.podman.names("volume", "ls") and not self.podman.names("secret", "ls"),
              "volumes or secrets are left")
        def running(pid):
            # A zombie has exited; only its parent (the machine's init, for conmon) reaps it.
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] != "Z"
            except OSError:
                return False
        # conmon exits a moment after its container: give the processes a few seconds.
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in self.pids.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = []
        for what, pid in self.pids.items():
            if running(pid):
                alive.append(f"{what} (pid {pid})")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        check(not alive, f"processes of the pods ran on after kube down (now killed): {alive}")
        return left

    def tear_down(self):
        """After a failure: the end of each role's log is shown, the pods stop, then they, their
        volumes and the secrets go."""
        if not self.up:
            return
        for container in self.podman.containers():
            if not container.endswith("-infra"):
                logs = self.podman("logs", "--tail", "15", container, check_rc=False)
                print(f"--- {container}:\n{logs.stdout}{logs.stderr}", file=sys.stderr)
        self.podman("kube", "down", self.manifest, check_rc=False, timeout=120)
        self.podman.remove_everything()


# ---- the test ----------------------------------------------------------------------------------


def load_image(docker, podman):
    """vmp3:latest from the Docker engine into podman's storage, unless podman holds it already."""
    want = docker("image", "inspect", "--format", "{{.Id}}", IMAGE).stdout.strip()
    image_id = lambda: podman("image", "inspect", "--format", "{{.Id}}", PODMAN_IMAGE,  # noqa: E731
                              check_rc=False).stdout.strip().removeprefix("sha256:")
    if image_id() == want.removeprefix("sha256:"):
        log(f"podman holds {IMAGE} already ({want[:19]})")
        return
    save = subprocess.Popen([docker.client, "save", IMAGE], env=docker.env,
                            stdout=subprocess.PIPE)
    load = subprocess.run(["podman", "load"], stdin=save.stdout, env=podman.env,
                          capture_output=True, text=True, timeout=600)
    save.stdout.close()
    check(save.wait() == 0 and load.returncode == 0,
          f"docker save | podman load failed: {load.stderr[-2000:]}")
    check(image_id() == want.removeprefix("sha256:"),
          f"podman holds {image_id()} as {PODMAN_IMAGE}, docker has {want}")
    podman("image", "prune", "--force")  # earlier loads of vmp3:latest, now untagged
    log(f"docker save | podman load: {load.stdout.strip()}")


def require_kustomize_5():
    """The manifests need kubectl's kustomize v5 (components, `labels`), as tests/deploy/k8s do."""
    out = run(["kubectl", "version", "--client", "-o", "json"], check_rc=False).stdout
    version = json.loads(out or "{}").get("kustomizeVersion", "unknown")
    if not re.match(r"v?([5-9]|\d\d)\.", version):
        print(f"deploy tests skipped: kubectl embeds kustomize {version}; the manifests need v5 "
              "(kubectl 1.27 or newer)")
        sys.exit(SKIPPED)


def main():
    require_tools("podman", "kubectl", "nginx", "curl")
    require_kustomize_5()
    phases = Phases()
    docker = Docker()
    podman = Podman(os.path.join(BUILD_DIR, "deploy", "podman"))
    podman_before = host_podman_state()
    # The run's queues, Redis keys and S3 objects live under this prefix on shared servers.
    prefix = "podman-" + uuid.uuid4().hex[:10]
    with contextlib.ExitStack() as cleanup, temp_dir("podman") as work:
        host_network = HostNetwork(os.path.join(work, "host-network"), docker)
        cleanup.callback(remove_blob_info_cache, podman_before)

        with phases("image"):
            podman.remove_everything()
            load_image(docker, podman)

        with phases("servers"):
            servers = cleanup.enter_context(test_servers())

        with phases("render"):
            ports = {role: free_port() for role in HTTP_ROLES}
            # The gateway's address, known before the pods start: the notifier's public URL.
            listen = f"127.0.0.1:{free_port()}"
            storage = re.sub(r"^(s3://[^/?]+)", rf"\1/{prefix}", servers["VMP3_TEST_S3_URL"])
            text = render(work, ports, storage, f"http://{listen}")
            docs = documents(text)
            kube = KubePlay(podman, os.path.join(work, "vmp3.yaml"), docs, ports)
            check(sorted(kube.deployments) == [f"vmp3-{r}" for r in ROLES],
                  f"Deployments {sorted(kube.deployments)}, roles {ROLES}")
            log(f"rendered {len(docs)} objects ({', '.join(sorted({k for k, _, _ in docs}))}); "
                f"ports {ports}")

        with phases("secrets"):
            # On a failure from here on: podman is emptied again, before the servers stop.
            cleanup.callback(kube.tear_down)
            kube.up = True
            create_secrets(podman, work, servers, prefix, podman.version(),
                           referenced_secrets(text))

        with phases("play"):
            kube.play()
            log(f"pods: {sorted(p for ps in kube.pods.values() for p in ps)}")

        with phases("ready"):
            kube.wait_ready()
            log(f"every role answers /healthz and /readyz: {kube.endpoints}; the HTTP "
                "roles' healthchecks pass; user, capabilities, seccomp, read-only root, limits "
                "and mounts as the manifests say")

        with phases("conversion"):
            url = cleanup.enter_context(gateway(work, ports, listen))
            receiver = cleanup.enter_context(WebhookReceiver())
            endpoint = {}

            def register_webhook(api):
                # Through the gateway to the notifier pod, as the user who then uploads.
                endpoint.update(api.json("POST", "/v1/webhooks",
                                         {"url": receiver.url, "events": ["job.done"]}))
                check(endpoint.get("url") == receiver.url and endpoint.get("enabled") is True,
                      f"POST /v1/webhooks answered {endpoint}")

            job = convert_through(Api(url), work, seconds=4, on_signed_up=register_webhook)
            did = kube.converted_by(job["id"])
            check(len(did) == 1, f"job {job['id']} converted by {did}, not by one converter")
            log(f"job {job['id']} through the gateway: uploaded, followed over SSE, converted by "
                f"{did[0]}, downloaded, decoded to the source's length")
            headers, payload = receiver.wait_for(endpoint["secret"], "job.done", job["id"], 30)
            mp3_link = payload["data"].get("links", {}).get("mp3")
            check(mp3_link == f"{url}/v1/jobs/{job['id']}/mp3",
                  f"the delivery's MP3 link is {mp3_link}, not under VMP3_PUBLIC_URL {url}")
            log(f"the notifier pod delivered job.done to the webhook: signature verified, "
                f"webhook-id {headers.get('webhook-id')}, link {mp3_link}")

        with phases("stop"):
            left = kube.stop()
            log(f"every role exited 0 on SIGTERM; kube down; removed volumes {left['volumes']} "
                f"and secrets {left['secrets']}; no pod, container or process of the run left")

        cleanup.close()  # the gateway; the test servers when they are ours
        changes = host_network.put_back_changes(podman)
        check(not changes, f"the host's networking changed (put back): {changes}")
        after = host_podman_state()
        check(after == podman_before,
              f"the host's podman state changed: before {podman_before}, after {after}")
        log("host networking (iptables, sysctls, interfaces) and podman state as before")
        log(f"phases: {phases.summary()}")


if __name__ == "__main__":
    run_test(main)
