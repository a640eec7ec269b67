# The README's commands. `make test` installs what is missing, builds, and runs
# every test through ctest.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps configure build test run clean format

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# Builds the server and CLI, then runs a 3-node cluster on 127.0.0.1 in the
# foreground; Ctrl-C stops it.
run: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target raftlockd $(if $(wildcard client/CMakeLists.txt),raftlockctl,)
	@RAFTLOCK_BUILD=$(abspath $(BUILD_DIR)) bash deploy/local/cluster.sh run 3

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
