# vmp3 — the two commands: `make run` and `make test`. Everything else is a building block.
BUILD_DIR ?= build
ASAN_BUILD_DIR ?= build-asan
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./vmp3-data
CMAKE_FLAGS ?=

.PHONY: all deps test-deps build run run-distributed compose-up compose-down test test-unit test-asan fuzz bench format format-check clean

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Starts the server on embedded backends (local files + SQLite) and prints its URL.
run: build
	@scripts/run-server $(BUILD_DIR)/vmp3 $(LISTEN) $(DATA_DIR)

# The distributed deployment on one machine: RabbitMQ, Redis and Ceph RGW on 127.0.0.1, every role
# its own process (two converters), nginx on LISTEN in front; prints the URL. State and logs under
# DISTRIBUTED_DIR. Ctrl-C stops everything it started.
DISTRIBUTED_DIR ?= $(BUILD_DIR)/distributed
run-distributed: build
	@scripts/install-deps --with-servers
	@scripts/run-distributed $(BUILD_DIR)/vmp3 $(DISTRIBUTED_DIR) $(LISTEN)

# The compose stack (compose.yaml): the gateway on 127.0.0.1:COMPOSE_PORT, every role its own
# container, RabbitMQ, Redis, S3 and Prometheus. Uses the Docker engine that runs ($DOCKER_HOST)
# or starts one; builds what is missing (local stand-ins only where official images cannot be
# pulled). compose-down stops it and removes its volumes. See docs/deploy.md ("Compose").
COMPOSE_PORT ?= 8080
compose-up:
	@scripts/install-deps --with-deploy
	@COMPOSE_PORT=$(COMPOSE_PORT) scripts/compose up

compose-down:
	@scripts/compose down

# Every test. Installs what the tests need (real servers, Chromium), starts RabbitMQ and Redis
# (emptied of earlier runs' queues and keys), Ceph RGW and an SMTP server (aiosmtpd, STARTTLS)
# on loopback for the distributed-mode and e-mail tests, runs unit + integration + browser tests on
# the Release build and the fuzz_smoke test (`make fuzz` itself: every fuzz target built with
# clang in build-fuzz and run FUZZ_SMOKE_SECONDS, default 5), stops the servers, then runs the
# unit tests again under ASan + UBSan (built -O1 -g1: half the compile time of -O2 -g, and
# reports still name the source lines).
SERVERS_DIR ?= $(BUILD_DIR)/test-servers
test: test-deps build
	@scripts/test-servers start-fresh $(SERVERS_DIR) >/dev/null
	@eval "$$(scripts/test-servers env $(SERVERS_DIR))"; \
	  VMP3_TEST_SERVERS_DIR=$(abspath $(SERVERS_DIR)) \
	  ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 900; rc=$$?; \
	  scripts/test-servers stop $(SERVERS_DIR) >/dev/null 2>&1; exit $$rc
	$(MAKE) --no-print-directory test-asan

test-deps:
	@scripts/install-deps --with-servers
	@scripts/install-browser-test-deps
	@scripts/install-deploy-test-deps

test-unit: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L unit

test-asan: deps
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMP3_SANITIZE=ON \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
	  -DVMP3_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS) --target vmp3_tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD_DIR) --output-on-failure -j $(JOBS) -L unit --timeout 900

# libFuzzer targets (clang, in build-fuzz): each built and run for FUZZ_SECONDS on its seed
# corpus fuzz/corpus/<target>; new inputs go to build-fuzz/corpus/<target>, crashes to
# build-fuzz/crashes/<target>. FUZZ_TARGETS picks some (default: all); FUZZ_PARALLEL targets run
# at once, one core each. See fuzz/README.md.
FUZZ_SECONDS ?= 60
FUZZ_PARALLEL ?= 1
FUZZ_TARGETS ?=
fuzz: deps
	scripts/run-fuzzers --seconds $(FUZZ_SECONDS) --parallel $(FUZZ_PARALLEL) $(FUZZ_TARGETS)

# The conversion benchmark against the ffmpeg CLI (bench/README.md). BENCH_SMOKE=1: tiny inputs, one
# repetition, the table under $(BUILD_DIR)/bench-results-smoke (a check that it runs, in seconds).
bench: build
	VMP3_BUILD_DIR=$(BUILD_DIR) bench/convert_bench.sh

format:
	find app src tests bench fuzz -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

format-check:
	find app src tests bench fuzz -name '*.cpp' -o -name '*.hpp' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) build-fuzz
