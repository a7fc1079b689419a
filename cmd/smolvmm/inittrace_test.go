package main

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
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
	// One P: the first sync.Pool an init uses (fmt's, by a package-level
	// fmt.Sprintf) makes its array of one entry per P there, 148 bytes
	// each, which on a machine of 32 cores took the total past its bound.
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "GOMAXPROCS=1")
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

// initModules are the modules, besides the standard library and smolvmm's
// own, whose packages may run initialisation: every start of smolvmm, a
// VM's above all, runs it, whether the command uses them or not. A new
// one here is a choice, made with the time and memory its inits cost
// (GODEBUG=inittrace=1 smolvmm --help).
var initModules = []string{
	"github.com/diskfs/go-diskfs/",
	"github.com/insomniacslk/dhcp/",
	"github.com/miekg/dns",
	"github.com/mitchellh/colorstring",
	"github.com/pierrec/lz4/",
	"github.com/schollz/progressbar/",
	"github.com/sirupsen/logrus",
	"github.com/u-root/uio/",
	"github.com/ulikunitz/xz",
	"github.com/urfave/cli/",
	"golang.org/x/net/",
	"golang.org/x/sys/",
	"gvisor.dev/gvisor/",
}

// TestOnlyKnownModulesInit checks the runtime's trace of package
// initialisation against initModules. gvisor-tap-vsock's forwarder package
// once linked, and initialised at every start, golang.org/x/crypto/ssh,
// its knownhosts and curve25519 (0.16 ms, 16 KB) and inetaf/tcpproxy for
// three functions netback used.
func TestOnlyKnownModulesInit(t *testing.T) {
	cmd := exec.Command(smolvmmBin(t), "--help")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("smolvmm --help: %v\n%s", err, out)
	}
	seen := 0
	for _, m := range initLine.FindAllSubmatch(out, -1) {
		seen++
		pkg := string(m[1])
		first, _, _ := strings.Cut(pkg, "/")
		if pkg == "main" || !strings.Contains(first, ".") || strings.HasPrefix(pkg, "github.com/smolvmm/smolvmm/") {
			continue // the standard library (vendor/ included) or ours
		}
		if !slices.ContainsFunc(initModules, func(mod string) bool { return strings.HasPrefix(pkg, mod) }) {
			t.Errorf("%s runs init at every start (%s bytes): not one of the modules expected to (initModules)", pkg, m[2])
		}
	}
	if seen < 50 {
		t.Fatalf("inittrace named %d packages, want many more:\n%s", seen, out)
	}
}

// TestNoSSHLinked: nothing smolvmm does speaks SSH, and x/crypto/ssh came
// in through a package of which three functions were used (see
// TestOnlyKnownModulesInit); linked, its code and inits are paid by every VM.
func TestNoSSHLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "urfave_cli_no_docs", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "golang.org/x/crypto/ssh") || strings.Contains(pkg, "/sshclient") {
			t.Errorf("smolvmm links %s", pkg)
		}
	}
}
