# The two commands a new user needs: `make demo` and `make test`. Both install what is missing
# (Debian packages, the pinned ONNX Runtime from npm) and build incrementally.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all setup configure build test test-sanitize demo bench fuzz clean format format-check

all: build

setup: $(BUILD)/.setup-done
$(BUILD)/.setup-done: scripts/setup.sh
	@bash scripts/setup.sh
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/build.ninja: $(BUILD)/.setup-done CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

configure: $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1500

# The unit tests again, built with AddressSanitizer + UndefinedBehaviorSanitizer (CI runs both).
SANITIZE_BUILD ?= build-sanitize
SANITIZE_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
UNIT_TESTS = test_common test_codec test_graph test_runtime test_profile test_store test_plan test_deploy test_serve_unit
test-sanitize: setup
	cmake -S . -B $(SANITIZE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
	  -DCMAKE_CXX_FLAGS="$(SANITIZE_FLAGS)" -DCMAKE_EXE_LINKER_FLAGS="$(SANITIZE_FLAGS)" \
	  -DSCISSION_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(SANITIZE_BUILD) -j $(JOBS) --target $(UNIT_TESTS) scission
	cd $(SANITIZE_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -L unit --output-on-failure -j $(JOBS) --timeout 1500

demo: build
	./$(BUILD)/scission demo
	./$(BUILD)/scission demo --scenario adaptive --phase-s 10 --measure-s 2 --repeats 3

bench: build
	@mkdir -p $(BUILD)/bench
	./$(BUILD)/bench_plan --benchmark_out=$(BUILD)/bench/bench_plan.json --benchmark_out_format=json
	./$(BUILD)/bench_analysis --benchmark_out=$(BUILD)/bench/bench_analysis.json --benchmark_out_format=json

fuzz:
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSCISSION_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target fuzz_pickle fuzz_onnx fuzz_wire fuzz_plan

format:
	find src tests bench fuzz \( -name '*.cpp' -o -name '*.h' \) | xargs clang-format -i

format-check:
	scripts/check_format.sh

clean:
	rm -rf $(BUILD)
