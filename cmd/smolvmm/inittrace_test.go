package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// initLine is one line of GODEBUG=inittrace=1: a package's init, its time
// and what it allocated.
var initLine = regexp.MustCompile(`(?m)^init (\S+) @[0-9.]+ ms, [0-9.]+ ms clock, (\d+) bytes, (\d+) allocs$`)

// TestOwnPackagesInitAllocateLittle checks, through the runtime's own
// trace of package initialisation, that smolvmm's packages allocate next to
// nothing at init: every command, a VM start first of all, pays for what
// they set up there and keeps it resident (no GC runs before a guest
// does), so state only some commands or tests use is built on first use.
// guests compiled three test-only regexps at init (29,880 bytes, 172
// allocations) before they were made lazy; the others allocate under 1 KB.
func TestOwnPackagesInitAllocateLittle(t *testing.T) {
	const perPackage, total = 8 << 10, 12 << 10
	cmd := exec.Command(smolvmmBin(t), "--help")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("smolvmm --help: %v\n%s", err, out)
	}
	sum, seen := 0, 0
	for _, m := range initLine.FindAllSubmatch(out, -1) {
		pkg := string(m[1])
		if pkg != "main" && !strings.HasPrefix(pkg, "github.com/smolvmm/smolvmm/") {
			continue
		}
		seen++
		n, _ := strconv.Atoi(string(m[2]))
		sum += n
		if n > perPackage {
			t.Errorf("%s allocates %d bytes (%s allocations) at init, more than %d: build what only some commands use on first use", pkg, n, m[3], perPackage)
		}
	}
	if seen < 5 {
		t.Fatalf("inittrace named %d of smolvmm's packages, want at least 5 (vmm, guests...):\n%s", seen, out)
	}
	if sum > total {
		t.Errorf("smolvmm's packages allocate %d bytes at init together, more than %d", sum, total)
	}
}
