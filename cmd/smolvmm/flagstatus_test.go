package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlagValueStatus: a bad flag value is a mistake on the command
// line, status 2 (README), with advice that fits it. Each of these gave
// status 1, or (--uid -5) status 2 with the wrong advice.
func TestBadFlagValueStatus(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	kernel := filepath.Join(dir, "netbsd")
	if err := os.WriteFile(kernel, netbsdELF(3, nil), 0o644); err != nil { // EM_386
		t.Fatal(err)
	}
	// The same with a multiboot header (flags 2), as GENERIC has. Its
	// code jumps over the header and ends the run with status 3 through
	// the debug-exit port, so an append line that is wrongly let through
	// fails the test at once instead of leaving a guest running.
	mbKernel := filepath.Join(dir, "netbsd-multiboot")
	if err := os.WriteFile(mbKernel, netbsdELF(3, []byte{
		0xeb, 0x0e, 0x90, 0x90, // jmp over the header
		0x02, 0xb0, 0xad, 0x1b, 2, 0, 0, 0, 0xfc, 0x4f, 0x52, 0xe4, // multiboot header
		0x66, 0xba, 0x01, 0x05, // mov dx, 0x501
		0xb8, 0x01, 0, 0, 0, // mov eax, 1
		0xef, 0xf4, // out dx, eax; hlt
	}), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		want     string
		needsKVM bool
	}{
		{"mkimg --timestamp garbage", []string{"mkimg", "-s", "rescue", "-i", filepath.Join(dir, "x.img"), "--timestamp", "garbage"},
			`--timestamp "garbage": want Unix seconds or an RFC 3339 time`, false},
		{"kstrip --keep empty", []string{"kstrip", "--keep", "", kernel}, `--keep "" names nothing`, false},
		{"kstrip --keep comma", []string{"kstrip", "--keep", ",", kernel}, `--keep "," names nothing`, false},
		// The built-in guest is multiboot: it was loaded, then refused
		// as no NetBSD kernel, status 1.
		{"demo --boot netbsd", []string{"demo", "--boot", "netbsd"}, "smolvmm demo: --boot netbsd: the built-in demo guest is a multiboot kernel, which NetBSD's native handoff cannot boot (drop --boot, or give --boot multiboot)", false},
		{"demo --boot netbsd with a disk", []string{"demo", "--boot", "netbsd", "-d", filepath.Join(dir, "nosuch.img")}, "--boot netbsd: the built-in demo guest is a multiboot kernel", false},
		{"bench --boot netbsd without -k", []string{"bench", "--boot", "netbsd", "-n", "1", "--warmup", "0"}, "smolvmm bench: --boot netbsd: without -k bench boots the built-in demo guest, a multiboot kernel", false},
		{"demo --uid negative", []string{"demo", "--uid", "-5", "--gid", "3"}, "--uid -5: ids are not negative; give a user id between 1 and 4294967294", false},
		// An empty path in an option string, as -d ,ro: was status 1,
		// "open : no such file or directory".
		{"run module without a path", []string{"run", "-k", kernel, "--net", "none", "--module", ","},
			`--module ",": empty file path (the form is FILE[,args], or FILE,kmod|fs|splash|rndseed for a NetBSD kernel; a comma in FILE is written ,,)`, false},
		{"run module type without a path", []string{"run", "-k", kernel, "--net", "none", "--module", ",kmod"},
			`--module ",kmod": empty file path (the form is FILE[,args]`, false},
		{"run share without a path", []string{"run", "-k", kernel, "--net", "none", "--share", ","},
			`--share ",": empty directory path (the form is DIR[,ro]; a comma in DIR is written ,,)`, false},
		{"run read-only share without a path", []string{"run", "-k", kernel, "--net", "none", "--share", ",ro"},
			`--share ",ro": empty directory path (the form is DIR[,ro]; a comma in DIR is written ,,)`, false},
		{"demo module without a path", []string{"demo", "--module", ","}, `--module ",": empty file path`, false},
		{"up share without a path", []string{"up", "--mirror", "http://127.0.0.1:1/pub", "--cache", filepath.Join(dir, "cache"), "--share", ",", "rescue"},
			`--share ",": empty directory path`, false},
		{"run bad module type", []string{"run", "-k", kernel, "--net", "none", "--module", kernel + ",bogus"},
			`type "bogus": unknown module type: want kmod, fs, splash or rndseed`, true},
		{"run bad console", []string{"run", "-k", kernel, "--net", "none", "-a", "console=bogus"},
			`console="bogus": NetBSD knows only console=com (the serial port) and console=pc`, true},
		// NetBSD's multiboot entry ignores a console it does not know
		// and stays on the display: the guest would print nothing.
		{"run bad console, multiboot", []string{"run", "-k", mbKernel, "--net", "none", "-a", "console=ttyS0 root=ld0a"},
			`console="ttyS0": NetBSD knows only console=com (the serial port) and console=pc (a display, which this machine lacks); with any other value the kernel prints nothing (check the boot flags and console=, console_addr=, console_speed=, root= in -a)`, true},
		{"run console on a port with no UART, multiboot", []string{"run", "-k", mbKernel, "--net", "none", "-a", "console=com console_addr=0x2f8 root=ld0a"},
			`console_addr="0x2f8" is port 0x2f8, but this machine's only serial port is at 0x3f8`, true},
		// findroot reads ld0 as unit 0 with a partition from the NUL.
		{"run root without a partition, native", []string{"run", "-k", kernel, "--net", "none", "-a", "console=com root=ld0"},
			`root="ld0": ld is a disk driver with partitions, and without a partition letter findroot would take the NUL after the unit as one; add it, such as ld0a; the root device is a disk partition such as ld0a, a wedge (dk0, or NAME= and its name) or a network interface for root on NFS (vioif0) (check the boot flags and console=, console_addr=, console_speed=, root= in -a)`, true},
		{"run root without a partition, multiboot", []string{"run", "-k", mbKernel, "--net", "none", "-a", "console=com root=ld0"},
			`root="ld0": ld is a disk driver with partitions, and without a partition letter findroot would take the NUL after the unit as one; add it, such as ld0a; the root device is a disk partition such as ld0a, a wedge (dk0, or NAME= and its name) or a network interface for root on NFS (vioif0) (check the boot flags and console=, console_addr=, console_speed=, root= in -a)`, true},
		{"run unknown boot flag, multiboot", []string{"run", "-k", mbKernel, "--net", "none", "-a", "console=com root=ld0a -k"},
			`"-k": unknown boot flag -k`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsKVM && !kvmUsable() {
				t.Skip("needs /dev/kvm: the kernel's boot protocol judges the value")
			}
			cmd := exec.Command(bin, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("exit %v, want status 2; stderr: %s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.want)
			}
		})
	}
}

// TestFlagParseMessages: a value the flag's type cannot take is refused
// in the wording of the other bad values (mkimg -m "abc": want ...): the
// flag with its dashes, the value and what is wanted. urfave/cli said
// `invalid value "abc" for flag -timeout: parse error`.
func TestFlagParseMessages(t *testing.T) {
	bin := smolvmmBin(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"up -m", []string{"up", "-m", "abc", "rescue"}, `smolvmm up: -m "abc": want a whole number of MiB between 3 and 3072 (see smolvmm up --help)`},
		{"run -m", []string{"run", "-m", "abc"}, `smolvmm run: -m "abc": want a whole number of MiB between 3 and 3072 (see smolvmm run --help)`},
		{"run --memory", []string{"run", "--memory", "1e3"}, `smolvmm run: -m "1e3": want a whole number of MiB between 3 and 3072 (see smolvmm run --help)`},
		{"run -m out of range", []string{"run", "-m", "99999999999999999999"}, `smolvmm run: -m "99999999999999999999": want a whole number of MiB between 3 and 3072`},
		{"bench --timeout", []string{"bench", "--timeout", "abc"}, `smolvmm bench: --timeout "abc": want a duration such as 90s, 2m or 1m30s (see smolvmm bench --help)`},
		{"bench -timeout", []string{"bench", "-timeout", "10"}, `smolvmm bench: --timeout "10": want a duration such as 90s, 2m or 1m30s`},
		{"bench -n", []string{"bench", "-n", "x"}, `smolvmm bench: -n "x": want a whole number of boots, at least 1`},
		{"demo --ready-port", []string{"run", "--ready-port", "http"}, `smolvmm run: --ready-port "http": want a TCP port between 1 and 65535`},
		{"demo --uid", []string{"demo", "--uid", "nobody"}, `smolvmm demo: --uid "nobody": want a numeric user id`},
		{"bench --console=", []string{"bench", "--console=maybe"}, `smolvmm bench: --console=maybe: a switch takes no value, or =true or =false`},
		{"run -m without a value", []string{"run", "-m"}, `smolvmm run: -m needs a value (see smolvmm run --help)`},
		{"unknown flag", []string{"fetch", "-mirror=x", "--bogus"}, `smolvmm fetch: unknown flag --bogus (see smolvmm fetch --help)`},
		// Before the command a flag is smolvmm's own: it was said as
		// "smolvmm run: unknown flag -x", run's.
		{"unknown flag before the command", []string{"-x", "run"}, `smolvmm: unknown flag -x before the command run: flags there are smolvmm's own (--help, --version); run's go after its name (see smolvmm run --help)`},
		{"unknown long flag before the command", []string{"--kernel", "k", "run"}, `smolvmm: unknown flag --kernel before the command run:`},
		{"bad switch value before the command", []string{"--version=x", "run"}, `smolvmm: --version=x: a switch takes no value, or =true or =false (see smolvmm --help)`},
		{"unknown flag without a command", []string{"-x"}, `smolvmm: unknown flag -x (see smolvmm --help)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("exit %v, want status 2; stderr: %s", err, stderr.String())
			}
			msg := strings.TrimSuffix(stderr.String(), "\n")
			if !strings.HasPrefix(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("stderr %q\nwant one line starting %q", msg, tt.want)
			}
		})
	}
}

// TestStrayArguments: every command refuses the arguments it does not
// take in one wording, and a flag after an argument is named as such.
// fetch took `--mirror URL` after a set as two more set names ("bad set
// ...: want a plain name"); each command had its own wording.
func TestStrayArguments(t *testing.T) {
	flagAfter := func(cmd, flag string) string {
		return "smolvmm " + cmd + ": flag " + flag + " after the arguments: flags go before the arguments (see smolvmm " + cmd + " --help)"
	}
	onlyFlags := func(cmd, arg string) string {
		return "smolvmm " + cmd + `: unexpected argument "` + arg + `": smolvmm ` + cmd + " takes only flags (see smolvmm " + cmd + " --help)"
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"fetch", "nosuchset", "--mirror", "http://127.0.0.1:1/"}, flagAfter("fetch", "--mirror")},
		{[]string{"kstrip", "k.gz", "-o", "out"}, flagAfter("kstrip", "-o")},
		{[]string{"up", "rescue", "-m", "64"}, flagAfter("up", "-m")},
		{[]string{"run", "extra", "-k", "k"}, flagAfter("run", "-k")},
		{[]string{"kstrip", "a", "b"}, `smolvmm kstrip: unexpected argument "b": smolvmm kstrip takes one KERNEL, after the flags (see smolvmm kstrip --help)`},
		{[]string{"up", "rescue", "base"}, `smolvmm up: unexpected argument "base": smolvmm up takes one SERVICE, after the flags (see smolvmm up --help)`},
		{[]string{"run", "-k", "k", "extra"}, onlyFlags("run", "extra")},
		{[]string{"demo", "extra"}, onlyFlags("demo", "extra")},
		{[]string{"bench", "extra"}, onlyFlags("bench", "extra")},
		{[]string{"mkimg", "extra"}, onlyFlags("mkimg", "extra")},
		{[]string{"net", "extra"}, onlyFlags("net", "extra")},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, status := runCLIIn(t, t.TempDir(), tt.args...)
			if msg := strings.TrimSuffix(stderr, "\n"); status != 2 || msg != tt.want {
				t.Errorf("status %d, stderr %q\nwant 2 and %q", status, msg, tt.want)
			}
		})
	}
}

// TestFlagSpelling: every message names a flag as the README writes it,
// by its one-letter name when it has one, whichever name was typed (and
// urfave/cli does not say which). Empty values were named by the flag's
// long name (--kernel ""), bench's --parallel refusals too (--boots),
// while other refusals said -m "abc" and -n must be....
func TestFlagSpelling(t *testing.T) {
	bin := smolvmmBin(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "-k", ""}, `smolvmm run: -k "": want FILE, not an empty value`},
		{[]string{"run", "--kernel", ""}, `smolvmm run: -k "": want FILE, not an empty value`},
		{[]string{"kstrip", "-o", "", "k"}, `smolvmm kstrip: -o "": want OUT, not an empty value`},
		{[]string{"run", "-p", ""}, `smolvmm run: -p "": want SPEC, not an empty value`},
		{[]string{"mkimg", "-m", ""}, `smolvmm mkimg: -m "": want MiB, not an empty value`},
		{[]string{"mkimg", "-m", "abc"}, `smolvmm mkimg: -m "abc": want a size in MiB`},
		{[]string{"mkimg", "--megabytes", "abc"}, `smolvmm mkimg: -m "abc": want a size in MiB`},
		{[]string{"run", "--memory", "abc"}, `smolvmm run: -m "abc": want a whole number of MiB`},
		{[]string{"run", "--memory"}, `smolvmm run: -m needs a value`},
		{[]string{"run", "--verbose=maybe"}, `smolvmm run: -v=maybe: a switch takes no value`},
		{[]string{"bench", "--boots", "x"}, `smolvmm bench: -n "x": want a whole number of boots`},
		{[]string{"bench", "-n", "0"}, `smolvmm bench: -n 0: give at least 1 boot`},
		{[]string{"bench", "--warmup", "-1"}, `smolvmm bench: --warmup -1: give 0 or more warm-up boots`},
		{[]string{"bench", "-n", "1", "--parallel", "2"}, `smolvmm bench: -n does not go with --parallel`},
		{[]string{"bench", "--boots", "1", "--parallel", "2"}, `smolvmm bench: -n does not go with --parallel`},
		{[]string{"bench", "--publish", "8080:80", "--parallel", "2"}, `smolvmm bench: -p does not go with --parallel`},
		{[]string{"bench", "--timeout", "x"}, `smolvmm bench: --timeout "x": want a duration`},
		{[]string{"kstrip", "-o", "-", "--list", "k"}, `smolvmm kstrip: -o - writes the kernel to standard output, where -l and --json print too`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("exit %v, want status 2; stderr: %s", err, stderr.String())
			}
			if !strings.HasPrefix(stderr.String(), tt.want) {
				t.Errorf("stderr %q\nwant it to start %q", stderr.String(), tt.want)
			}
		})
	}
}
