# smolvmm: `make demo` boots the built-in guest, `make test` runs every test.
GO       ?= go
BIN      := bin/smolvmm
# Inputs each fuzz target tries in `make test` (CI runs the same command). A
# count, not a duration: with -fuzztime as a duration, Go's coordinator can
# report its own deadline as a failure ("context deadline exceeded") when the
# timer fires under load, which made CI flaky. Inputs are not minimized (a
# failing one is saved as found): minimizing each new-coverage input of
# FuzzDecodeState (13 KB seeds) took 7 of CI's minutes, fuzzing it 32 s.
FUZZTIME ?= 100000x
FUZZMINIMIZE ?= 0

PREFIX   ?= /usr/local

.PHONY: all build install demo rescue netbsd-kernel test unit fuzz benchcheck bench vet clean

all: build

# urfave_cli_no_docs leaves out the CLI library's man-page generator (and
# its markdown package's init), which smolvmm never uses: less to load at
# every VM start. CGO_ENABLED=0 links statically: no dynamic loader and no
# libc mapped, which takes ~0.4 ms and ~1.2 MiB of resident memory off every
# VM start (bench: runtime 3.6 -> 3.2 ms, overhead 14.8 -> 13.6 MiB).
#
# GOEXPERIMENT=nogreenteagc, while the Go toolchain still offers it: Go
# 1.26's default collector (Green Tea) keeps its mark bits inside each span
# of small objects, so that the VMM's few hundred KiB of set-up allocations,
# spread over the size classes of two Ps' caches, touch ~0.2 MiB more per
# VM (bench --parallel 20 --net none: PSS without guest RAM 1.99 -> 1.79
# MiB a VM), and no collection runs before the guest does to pay it back.
# Experiments of your own in GOEXPERIMENT are kept.
BUILD_EXPERIMENT := $(shell x='$(GOEXPERIMENT)'; try="$${x:+$$x,}nogreenteagc"; GOEXPERIMENT="$$try" $(GO) env GOEXPERIMENT >/dev/null 2>&1 && echo "$$try" || echo "$$x")
build:
	CGO_ENABLED=0 GOEXPERIMENT=$(BUILD_EXPERIMENT) $(GO) build -tags urfave_cli_no_docs -o $(BIN) ./cmd/smolvmm

# Copies the binary built by make build (or make demo) to $(PREFIX)/bin,
# where the README's examples and docs/network.md's systemd unit find it.
# It does not build: `sudo make install` would run go as root, whose PATH
# often lacks it, and leave root-owned files in the build cache.
install:
	@test -x $(BIN) || { echo "make install: no $(BIN): run make build first, as yourself"; exit 1; }
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/smolvmm

# Boots the multiboot guest embedded in the binary; it prints what the loader
# gave it. Needs read and write access to /dev/kvm (the README says how).
demo: build
	./$(BIN) demo -a "hello from make demo"

# Fetches NetBSD 9.3 i386 (once), strips its kernel, builds rescue.img and
# boots it. Needs network access to cdn.netbsd.org the first time.
rescue: build
	./$(BIN) up rescue

# Finds the real NetBSD kernel the tests boot (beside the repository, in
# ../shared/netbsd) or downloads it from its public source into
# ~/.cache/smolvmm-test/netbsd, checking its digests; the tests look there.
netbsd-kernel:
	@dir=$$(sh .ci/netbsd-kernel) && echo "the real NetBSD kernel: $$dir"

# The library packages of the loaders and builders, which build on macOS
# and the BSDs too; imagebuilder itself (user namespaces, fallocate), vmm,
# netback, virtio, sandbox and so smolvmm are Linux's.
PORTABLE_PKGS := ./kstrip ./fetch ./service ./multiboot ./netbsdboot ./imagebuilder/fstree ./imagebuilder/ext2

# The cross checks take ~4 minutes with an empty build cache on 2 cores,
# a few seconds once it holds them.
vet:
	$(GO) vet ./...
	@# The code and its tests build where int is 32 bits too (the loaders and builders
	@# run on any Linux): an untyped constant past 2^31 breaks only there.
	GOARCH=386 $(GO) build ./...
	GOARCH=386 $(GO) vet ./...
	GOARCH=386 $(GO) vet -tags smolvmm_testhook ./cmd/smolvmm
	@# On a Linux that is not x86 (arm64) everything builds: the commands that need no KVM
	@# guest (kstrip, mkimg, fetch) work there.
	GOARCH=arm64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) build $(PORTABLE_PKGS)
	GOOS=netbsd GOARCH=amd64 $(GO) build $(PORTABLE_PKGS)
	GOOS=freebsd GOARCH=amd64 $(GO) build $(PORTABLE_PKGS)
	GOOS=openbsd GOARCH=amd64 $(GO) build $(PORTABLE_PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# The packages whose goroutines share state (the vCPU and the goroutines
# that stop it, the input pump, device workers, the user network) run their
# tests under the race detector; the others without, so nothing runs twice.
RACE_PKGS := ./vmm/... ./virtio/... ./netback/... ./bus/... ./pci/... ./guestmem/...

# go test through internal/testreport: each package's result and every
# failed test's output, as go test prints them, then every skipped test
# with its reason. With SMOLVMM_ALLOWED_SKIPS naming a list (CI:
# .ci/allowed-skips), a skip not in it fails the run.
GOTEST = GO='$(GO)' $(GO) run ./internal/testreport

# The sandbox's tests run again without cgo, as smolvmm is built (see
# build): its system call filter and privilege drop differ without libc;
# so do the user network's tests under the filter, where a cgo build lets
# an open fail quietly (sandbox.OpenRefusedQuietly) that kills smolvmm.
# There no skip is allowed: the list's one sandbox entry is the cgo
# build's, and under an empty list (/dev/null) it is neither allowed nor
# reported as matching nothing.
# The timeouts exceed go test's 10 minutes: the nested-KVM rig's tests
# allow 2 to 4 minutes each and retry a stalled boot once (up to 24
# minutes on a loaded machine); the race detector slows vmm's ~4.
unit:
	$(GOTEST) -count=1 -timeout 30m $$($(GO) list ./... | grep -v -E '/(vmm|virtio|netback|bus|pci|guestmem)(/|$$)')
	$(GOTEST) -race -count=1 -timeout 20m $(RACE_PKGS)
	CGO_ENABLED=0 SMOLVMM_ALLOWED_SKIPS=$${SMOLVMM_ALLOWED_SKIPS:+/dev/null} $(GOTEST) -count=1 ./sandbox/...
	CGO_ENABLED=0 SMOLVMM_ALLOWED_SKIPS=$${SMOLVMM_ALLOWED_SKIPS:+/dev/null} $(GOTEST) -count=1 -run UnderSeccomp ./netback/...

# Every fuzz target, each for FUZZTIME, from its committed seed corpus.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg; \
	  done; \
	done

# Every Go benchmark once (-benchtime 1x): make bench runs them for their
# figures, and a benchmark nothing runs rots (one judged QEMU's good
# debug-exit status a failure unnoticed). Through GOTEST, as unit: a
# benchmark that skips is judged by the allow-list too.
benchcheck:
	$(GOTEST) -count=1 -run '^$$' -bench . -benchtime 1x ./...

test: vet unit fuzz benchcheck

# Boots the built-in demo guest BENCH_BOOTS times in smolvmm and in QEMU
# (with and without KVM), writes bench/results.json and bench/boot.svg; boots
# it as many times again in smolvmm without its seccomp filter, a second
# table right below the first (bench/noseccomp.json): the filter's cost is
# the difference of their first-output and exit medians; takes a snapshot
# of the demo guest once it has started and times its restores beside cold
# boots (bench/restore.json, bench/restore.svg); then runs the Go benchmarks.
BENCH_BOOTS ?= 20
bench: build
	./$(BIN) bench -n $(BENCH_BOOTS) --warmup 2 --ready '^smolvmm-demo: done' --compare qemu \
	  --json bench/results.json --svg bench/boot.svg
	@echo 'The same boots without the seccomp filter (--no-seccomp); set beside smolvmm above: what the filter costs'
	./$(BIN) bench -n $(BENCH_BOOTS) --warmup 2 --ready '^smolvmm-demo: done' --no-seccomp \
	  --json bench/noseccomp.json
	@echo 'The demo restored from a snapshot taken at the same readiness (its last line), beside its cold boot'
	./$(BIN) run -k guests/bin/demo.elf --net none --ready '^smolvmm-demo: done' \
	  --snapshot bench/demo.snap --snapshot-exit >/dev/null
	./$(BIN) bench --restore bench/demo.snap --net none -n $(BENCH_BOOTS) --warmup 2 --compare boot \
	  --ready '^smolvmm-demo: done' --json bench/restore.json --svg bench/restore.svg
	rm -f bench/demo.snap
	$(GO) test -run '^$$' -bench BootToFirstByte -benchtime 10x ./vmm

clean:
	rm -rf bin
