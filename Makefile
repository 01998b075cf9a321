# SPDX-License-Identifier: GPL-2.0
#
# User entry points. The kernel build itself reads ./Kbuild.
#
#   make run        boot QEMU, create a virtual ADC, stream from it, report
#   make check      build everything and run the whole test suite, on both
#                   targets (TARGET=x86 or TARGET=versal: on one)
#   make module     build iio_dmabuf.ko against KDIR (default: the test kernel)
#   make qemu-run CMD='...' [EXTRA=DIR] [PERF=1] [MEM=MiB] [TARGET=versal]
#                   run CMD in the guest, module loaded (PERF=1: on the
#                   performance kernel, 2 CPUs, TSC clock)
#   make bench [QUICK=1] [TARGET=versal] [BENCH_ARGS='...']
#                   every data path's highest sustained rate, throughput and
#                   CPU cost over block sizes and counts, on the performance
#                   kernel (Documentation/iio/performance.rst; versal:
#                   into out/bench-versal/); BENCH_ARGS: iio_bench options,
#                   e.g. --no-timestamp (8-byte scans, into out/bench*-nots/)
#   make fuzz [SECONDS=N] [SEED=S] [OPS=M]
#                   the concurrency fuzzer in the guest (tests/fuzz.c)
#   make soak [MINUTES=N]
#                   every data path at once in the guest (tests/soak.c)
#
# KERNEL_SERIES selects the Debian linux-source series (default 7.3).
#
# TARGET selects the guest: x86 (QEMU's PC, the default) or versal (arm64,
# QEMU's xlnx-versal-virt); `make check` without TARGET runs both. module,
# lint, clean, bench and qemu-run act on one target (x86 unless
# TARGET=versal); run, fuzz, soak and qemu-run PERF=1 are x86 only for now.

KERNEL_SERIES ?= 7.3
export KERNEL_SERIES
LLVM ?= -19
export PATH := $(HOME)/.cargo/bin:$(PATH)
export LIBCLANG_PATH ?= /usr/lib/llvm-19/lib

TARGET ?=
ifneq ($(filter-out x86 versal,$(TARGET)),)
$(error TARGET must be x86 or versal)
endif
# TARGET reaches neither the environment of the commands nor the kernel's
# make: bindgen takes $TARGET for a target triple (the cargo build-script
# convention). The scripts get it on their command line.
unexport TARGET
MAKEOVERRIDES := $(filter-out TARGET=%,$(MAKEOVERRIDES))
# The one target of the commands that take one.
ONE_TARGET := $(or $(TARGET),x86)
KARCH := $(if $(filter versal,$(ONE_TARGET)),ARCH=arm64)
ifeq ($(TARGET),versal)
X86_ONLY := $(filter run fuzz soak,$(MAKECMDGOALS)) \
	$(if $(filter 1,$(PERF)),$(filter qemu-run,$(MAKECMDGOALS)) PERF=1)
ifneq ($(strip $(X86_ONLY)),)
$(error make $(strip $(X86_ONLY)): x86 only for now, not TARGET=versal)
endif
endif

# Only resolve (and maybe build) the test kernel when a target needs it.
KDIR ?= $(shell TARGET=$(ONE_TARGET) scripts/build-kernel.sh)

# The scripts run make themselves and read the output of some of it
# (make -s kernelversion): run them without this make's flags, which
# would add "Entering directory" lines after "make -C DIR".
SCRIPT := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL

.PHONY: all setup module clean check run bench fuzz soak qemu-run unit lint

all: module

setup:
	@$(SCRIPT) scripts/setup.sh

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KARCH) LLVM=$(LLVM) modules

lint:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KARCH) LLVM=$(LLVM) CLIPPY=1 W=1 modules
	rustfmt --check --edition 2021 --config-path $(shell scripts/fetch-kernel.sh)/.rustfmt.toml \
		src/iio_dmabuf_main.rs

unit:
	cargo test --quiet

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KARCH) LLVM=$(LLVM) clean
	rm -rf target out

check: setup
	@$(SCRIPT) TARGET=$(TARGET) scripts/check.sh

run: setup
	@$(SCRIPT) scripts/demo.sh

bench: setup
	@$(SCRIPT) $(if $(QUICK),BENCH_QUICK=$(QUICK)) BENCH_TARGET=$(ONE_TARGET) \
		scripts/bench.sh

fuzz: setup
	@$(SCRIPT) $(if $(SECONDS),FUZZ_SECONDS=$(SECONDS)) \
		$(if $(SEED),FUZZ_SEED=$(SEED)) $(if $(OPS),FUZZ_MIN_OPS=$(OPS)) \
		scripts/fuzz.sh

soak: setup
	@$(SCRIPT) $(if $(MINUTES),SOAK_MINUTES=$(MINUTES)) scripts/soak.sh

# PERF=1: the performance kernel, with the module built for it apart
# (out/perf-module), on 2 CPUs with the TSC clock (as make bench). CMD
# reaches the guest as one string (";" and quotes included).
export CMD
qemu-run: setup $(if $(filter 1,$(PERF)),,module)
	@[ -n "$$CMD" ] || { echo "make qemu-run: CMD='...' is required" >&2; exit 2; }
ifeq ($(PERF),1)
	@kdir=$$(PERF=1 $(SCRIPT) scripts/build-kernel.sh) && \
	ko=$$($(SCRIPT) scripts/build-module.sh "$$kdir" out/perf-module) && \
	$(SCRIPT) scripts/qemu-run.sh --kdir "$$kdir" --module "$$ko" --cpus 2 --tsc \
		$(if $(MEM),--mem $(MEM)) $(if $(EXTRA),--extra $(EXTRA)) -- "$$CMD"
else
	@$(SCRIPT) scripts/qemu-run.sh --target $(ONE_TARGET) --kdir $(KDIR) \
		--module iio_dmabuf.ko $(if $(MEM),--mem $(MEM)) $(if $(EXTRA),--extra $(EXTRA)) -- "$$CMD"
endif
