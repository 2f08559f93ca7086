"""The container image: the full multi-stage `docker build` (BuildKit) of the root Dockerfile, then
what an operator relies on — a non-root user, ENTRYPOINT vmp3, the OCI labels, /data as the
volume, a HEALTHCHECK that turns healthy — and that it works: `vmp3 convert` in a container, and
`docker run -p PORT:8080 vmp3` (the embedded single-container mode) with a read-only root
filesystem converting an upload end to end, stopping cleanly on SIGTERM and keeping its state on
the volume across a restart.

The image it leaves (vmp3:latest) is what the compose and podman tests run. VMP3_DEPLOY_PREBUILT=1
builds the `prebuilt` target around build/vmp3 instead of compiling in Docker (for a developer
re-running the deploy tests; `make test` always does the full build).
"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_support import (SOURCE_DIR, Api, Docker, check, convert_through, decoded_seconds,  # noqa: E402
                            free_port, log, make_video, run, run_test, script, temp_dir,
                            wait_until)

IMAGE = "vmp3:latest"


def build(docker):
    mode = "--prebuilt" if os.environ.get("VMP3_DEPLOY_PREBUILT") == "1" else "--full"
    started = time.monotonic()
    result = run([script("build-images"), mode, "--tag", IMAGE], env=docker.env, timeout=3000)
    log(f"built {IMAGE} ({mode}) in {time.monotonic() - started:.0f} s: "
        f"{result.stderr.strip().splitlines()[-1]}")


def inspect(docker):
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        version = re.search(r"project\(vmp3 VERSION ([0-9.]+)", f.read()).group(1)
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", IMAGE).stdout)
    check(config["User"] == "10001:10001", f"the image runs as {config['User']!r}, not 10001")
    check(config["Entrypoint"] == ["vmp3"], f"ENTRYPOINT is {config['Entrypoint']}")
    check("/data" in (config.get("Volumes") or {}), f"volumes: {config.get('Volumes')}")
    check("8080/tcp" in (config.get("ExposedPorts") or {}), f"ports: {config.get('ExposedPorts')}")
    health = config.get("Healthcheck") or {}
    check(any("/healthz" in part for part in health.get("Test", [])), f"HEALTHCHECK: {health}")
    labels = config.get("Labels") or {}
    for key in ("version", "source", "licenses", "revision"):
        check(labels.get(f"org.opencontainers.image.{key}"), f"no OCI label {key}: {labels}")
    check(labels["org.opencontainers.image.version"] == version,
          f"version label {labels['org.opencontainers.image.version']}, CMakeLists says {version}")
    out = docker("run", "--rm", IMAGE, "--version").stdout.strip()
    check(out == f"vmp3 {version}", f"vmp3 --version printed {out!r}")
    size = int(docker("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    log(f"image size {size / 1e6:.0f} MB; labels ok; user 10001; healthcheck {health['Test']}")


def convert_command(docker, work):
    """`vmp3 convert` in a throw-away container, on a mounted directory."""
    make_video(os.path.join(work, "talk.mp4"), 4)
    os.chmod(work, 0o777)  # the container's user (10001) writes the MP3 there
    docker("run", "--rm", "--read-only", "-v", f"{work}:/work", "-w", "/work", IMAGE,
           "convert", "talk.mp4")
    length = decoded_seconds(os.path.join(work, "talk.mp3"))
    check(abs(length - 4) < 0.1, f"vmp3 convert in a container: {length:.3f} s decoded, not 4")
    log("vmp3 convert in a container: talk.mp3 decodes to the source's length")


def embedded_server(docker, work):
    name = "vmp3-image-test"
    volume = "vmp3-image-test-data"
    docker("rm", "-f", name, check_rc=False)
    docker("volume", "rm", "-f", volume, check_rc=False)
    port = free_port()
    run_args = ["run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
                "-v", f"{volume}:/data", "-p", f"127.0.0.1:{port}:8080", IMAGE]
    try:
        docker(*run_args)
        api = Api(f"http://127.0.0.1:{port}")
        wait_until("the HEALTHCHECK says healthy", lambda: docker.health(name) == "healthy", 90)
        job = convert_through(api, work)
        log(f"embedded container: job {job['id']} done through the API (SSE followed), MP3 decoded")

        started = time.monotonic()
        docker("stop", "--time", "30", name)
        code = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        check(code == "0", f"vmp3 exited {code} on SIGTERM (docker stop), not 0")
        log(f"docker stop: exit 0 after {time.monotonic() - started:.1f} s")

        # State lives on the volume: the same account and MP3 after a new container starts.
        docker("rm", name)
        docker(*run_args)
        wait_until("the restarted container is healthy", lambda: docker.health(name) == "healthy",
                   90)
        again = api.job(job["id"])
        check(again["status"] == "done", f"after a restart the job is {again['status']}")
        api.download(job["id"], os.path.join(work, "again.mp3"))
        log("restarted on the same volume: the job and its MP3 are still there")
    finally:
        logs = docker("logs", name, check_rc=False)
        if logs.returncode == 0 and os.environ.get("VMP3_KEEP_TEMP") == "1":
            print(logs.stdout[-3000:], logs.stderr[-3000:])
        docker("rm", "-f", name, check_rc=False)
        docker("volume", "rm", "-f", volume, check_rc=False)


def main():
    docker = Docker()
    build(docker)
    inspect(docker)
    with temp_dir("image") as work:
        convert_command(docker, work)
        embedded_server(docker, work)


if __name__ == "__main__":
    run_test(main)
