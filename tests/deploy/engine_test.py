"""The container engine fixture of the deploy tests: `start` finds or starts a Docker engine and
makes the Debian base images; `stop` stops the dockerd it started and checks that the host's
networking (iptables rules, ip_forward, bridges) is back as it was before.

Usage (ctest): engine_test.py start | stop
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_support import (Docker, check, engine_dir, link_names, log, require_tools, run, run_test,  # noqa: E402
                            script)


def iptables_rules(saved_file=None, family="iptables"):
    """The rules without comments and counters, as text (from a saved file or the live tables)."""
    if saved_file:
        with open(saved_file) as f:
            text = f.read()
    else:
        text = subprocess.run([f"{family}-save"], capture_output=True, text=True).stdout
    return [line.split(" [")[0] for line in text.splitlines() if line and not line.startswith("#")]


def start():
    require_tools("dockerd", "debootstrap")
    run([script("container-engine"), "start", engine_dir()], timeout=180)
    docker = Docker()
    log(f"engine: {docker.env['DOCKER_HOST']} ({docker.env.get('VMP3_ENGINE_MODE')})")
    docker("version", "--format", "{{.Server.Version}}")  # fails the test if it does not answer
    run([script("base-images"), os.path.join(os.environ["VMP3_BUILD_DIR"], "deploy",
                                             "base-images")], env=docker.env, timeout=900)
    for tag in ("debian:bookworm", "debian:bookworm-slim"):
        docker("image", "inspect", tag)


def stop():
    saved = os.path.join(engine_dir(), "host-network")
    ours = os.path.isdir(saved)  # the snapshot exists only when the script started dockerd
    before = {}
    if ours:
        for family in ("iptables", "ip6tables"):
            path = os.path.join(saved, family + ".rules")
            if os.path.exists(path):
                before[family] = iptables_rules(path)
        with open(os.path.join(saved, "sysctl")) as f:
            sysctls = dict(line.split() for line in f if line.strip())
        with open(os.path.join(saved, "links")) as f:
            links = set(f.read().split())
    run([script("container-engine"), "stop", engine_dir()], timeout=120)
    if not ours:
        log("the engine was not ours: left running")
        return
    for family, rules in before.items():
        after = iptables_rules(family=family)
        check(after == rules, f"{family} rules differ after stop:\nbefore {rules}\nafter {after}")
    for key, value in sysctls.items():
        with open(f"/proc/sys/{key}") as f:
            now = f.read().strip()
        check(now == value, f"{key} is {now}, was {value}")
    extra = {n for n in link_names() - links if n.startswith(("docker", "br-", "veth", "podman", "cni"))}
    check(not extra, f"interfaces left behind: {sorted(extra)}")
    log("host networking restored: iptables, sysctls and links as before")


if __name__ == "__main__":
    run_test({"start": start, "stop": stop}[sys.argv[1]])
