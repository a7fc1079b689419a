package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/internal/realnetbsd"
)

// TestTapNameRefused: a --net tap:NAME Linux would not take as an
// interface's name is a mistake on the command line, status 2, naming
// --net: only an over-long one was; a character or . and .. were found
// when the tap was opened, status 1, without the flag.
func TestTapNameRefused(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	nokvm := filepath.Join(dir, "nokvm")
	tests := []struct{ name, want string }{
		{"a/b", "smolvmm run: --net tap:a/b: character '/' is not allowed in an interface name"},
		{"a b", "smolvmm run: --net tap:a b: character U+0020 is not allowed in an interface name: Linux refuses white space"},
		{"x:y", "smolvmm run: --net tap:x:y: character ':' is not allowed in an interface name"},
		{"tap\x01", `smolvmm run: --net tap:tap\x01: character U+0001 is not allowed in a tap name: Linux would take it, but the name is kept to printable ASCII, as it is echoed to terminals and logs and typed to delete the tap`},
		{"tapé", "smolvmm run: --net tap:tapé: character U+00E9 is not allowed in a tap name: Linux would take it, but the name is kept to printable ASCII, as it is echoed to terminals and logs and typed to delete the tap"},
		{"..", "smolvmm run: --net tap:..: .. is not an interface name: Linux refuses . and .."},
		{".", "smolvmm run: --net tap:.: . is not an interface name: Linux refuses . and .."},
		{"abcdefghijklmnop", "smolvmm run: --net tap:abcdefghijklmnop: the name is 16 bytes: an interface name has at most 15 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, status := runCLI(t, "run", "-k", text, "--kvm-device", nokvm, "--net", "tap:"+tt.name)
			msg := strings.TrimSuffix(stderr, "\n")
			if status != 2 || msg != tt.want {
				t.Errorf("--net tap:%q: status %d, stderr %q; want status 2 and %q", tt.name, status, msg, tt.want)
			}
		})
	}
}

// TestReadyPortRestoreNoNIC: --ready-port with a --restore whose VM had
// no network card is refused of the snapshot, as --net, -p and --mac
// are: it said "with --net none the guest has no network card", of a
// --net none never given.
func TestReadyPortRestoreNoNIC(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	snap := filepath.Join(t.TempDir(), "counter.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "none",
		"--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	said := ": --ready-port 80: the VM of --restore " + snap + " had no network card, so nothing can answer there; use --ready REGEXP on a console line instead"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"run", []string{"run", "--restore", snap, "--ready-port", "80"}, "smolvmm run" + said},
		{"run --net none", []string{"run", "--restore", snap, "--net", "none", "--ready-port", "80"}, "smolvmm run" + said},
		{"bench", []string{"bench", "--restore", snap, "--ready-port", "80", "-n", "1", "--warmup", "0"}, "smolvmm bench" + said},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, status := runCLI(t, tt.args...)
			if msg := strings.TrimSuffix(stderr, "\n"); status != 2 || msg != tt.want {
				t.Errorf("status %d, stderr %q; want status 2 and %q", status, msg, tt.want)
			}
		})
	}
}

// TestFlagAfterDoubleDash: a flag after -- is an argument, and the
// refusal names the --: it said "flag -k after the arguments", where no
// argument came before it. A flag after an argument is still that.
func TestFlagAfterDoubleDash(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--", "-k", "k"}, "smolvmm run: after --, -k is an argument: drop the -- (see smolvmm run --help)"},
		{[]string{"run", "--", "--net=none"}, "smolvmm run: after --, --net=none is an argument: drop the -- (see smolvmm run --help)"},
		{[]string{"kstrip", "--", "-o", "out", "k"}, "smolvmm kstrip: after --, -o is an argument, and flags go before the arguments: drop the -- for the flag -o, or write ./-o for a file named -o (see smolvmm kstrip --help)"},
		{[]string{"up", "--", "-k"}, "smolvmm up: after --, -k is an argument: drop the -- (see smolvmm up --help)"},
		{[]string{"net", "--", "--quiet"}, "smolvmm net: after --, --quiet is an argument: drop the -- (see smolvmm net --help)"},
		{[]string{"run", "--", "extra", "-k", "k"}, "smolvmm run: flag -k after the arguments: flags go before the arguments (see smolvmm run --help)"},
		{[]string{"run", "extra", "-k", "k"}, "smolvmm run: flag -k after the arguments: flags go before the arguments (see smolvmm run --help)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, status := runCLI(t, tt.args...)
			if msg := strings.TrimSuffix(stderr, "\n"); status != 2 || msg != tt.want {
				t.Errorf("status %d, stderr %q; want status 2 and %q", status, msg, tt.want)
			}
		})
	}
}

// TestDoubleDashFileNamedLikeFlag: kstrip's argument is a file, which
// may be named like a flag: after --, the refusal tells how to give it
// (./-k), which works, as well as how to give the flag. It said only
// "drop the --", after which -k was an unknown flag.
func TestDoubleDashFileNamedLikeFlag(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "-k"), []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, status := runCLIIn(t, dir, "kstrip", "--", "-k")
	want := "smolvmm kstrip: after --, -k is an argument, and flags go before the arguments: drop the -- for the flag -k, or write ./-k for a file named -k (see smolvmm kstrip --help)\n"
	if status != 2 || stderr != want {
		t.Errorf("kstrip -- -k: status %d, stderr %q; want status 2 and %q", status, stderr, want)
	}
	// As advised: the file is read as the kernel (and is not one).
	_, stderr, status = runCLIIn(t, dir, "kstrip", "./-k")
	if status != 1 || !strings.HasPrefix(stderr, "smolvmm kstrip: ./-k: not an ELF file") {
		t.Errorf("kstrip ./-k: status %d, stderr %q; want status 1 and the file read as the kernel", status, stderr)
	}
}

// TestAppendLengthAutoNative: under --boot auto, a -k kernel that boots
// by NetBSD's native handoff (here one without a multiboot header) has
// no command line to fill, as under --boot netbsd: neither a long -a nor
// a long file name is refused (the VM is then refused for want of KVM).
// They were, status 2, as for a multiboot kernel, which still is.
func TestAppendLengthAutoNative(t *testing.T) {
	native, _ := realnetbsd.Files(t)
	dir := t.TempDir()
	nokvm := filepath.Join(dir, "nokvm")
	longName := filepath.Join(dir, strings.Repeat("k", 254))
	if err := os.Symlink(native, longName); err != nil {
		t.Fatal(err)
	}
	multiboot := guests.ForTest(t, "counter")
	// A NetBSD kernel with a multiboot header boots by multiboot alone
	// and natively with modules, under --boot auto: its -a limit is the
	// multiboot one without a module only.
	both := filepath.Join(dir, "netbsd-multiboot")
	if err := os.WriteFile(both, elftest.NetBSDMultibootKernel(), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := filepath.Join(dir, "fs.img")
	if err := os.WriteFile(fs, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	long := "console=com root=ld0a " + strings.Repeat("x", 300)
	tests := []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"native, long -a", []string{"run", "-k", native, "-a", long}, 1, "no KVM"},
		{"native, --boot auto, long -a", []string{"run", "-k", native, "--boot", "auto", "-a", long}, 1, "no KVM"},
		{"native, name fills the command line", []string{"run", "-k", longName}, 1, "no KVM"},
		{"bench native, long -a", []string{"bench", "-k", native, "-a", long, "-n", "1", "--warmup", "0"}, 1, "no KVM"},
		{"native, --boot multiboot, long -a", []string{"run", "-k", native, "--boot", "multiboot", "-a", long}, 2, "smolvmm run: -a: 322 bytes"},
		{"multiboot, long -a", []string{"run", "-k", multiboot, "-a", long}, 2, "smolvmm run: -a: 322 bytes"},
		{"NetBSD with a multiboot header, a module, long -a", []string{"run", "-k", both, "--boot", "auto", "--module", fs + ",fs", "-a", long}, 1, "no KVM"},
		{"NetBSD with a multiboot header, long -a", []string{"run", "-k", both, "--boot", "auto", "-a", long}, 2, "smolvmm run: -a: 322 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(tt.args[:1:1], append([]string{"--net", "none", "--kvm-device", nokvm}, tt.args[1:]...)...)
			_, stderr, status := runCLI(t, args...)
			if status != tt.status || !strings.Contains(stderr, tt.want) {
				t.Errorf("status %d, stderr %q; want status %d and %q", status, stderr, tt.status, tt.want)
			}
		})
	}
}
