package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestUpChecksModulesAndAppendBeforeFetch: up refuses a --module type, a
// module larger than -m, a boot flag -a does not have and a --module
// file that is missing or a directory before it downloads (the mirror is
// unreachable: a fetch would fail with a network error), in run's words
// and with run's advice. With --boot multiboot the type is no fault of
// its own: the module is, NetBSD's multiboot entry reading none, and
// that is refused before the download too (it was refused when the
// kernel loaded).
func TestUpChecksModulesAndAppendBeforeFetch(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	mod := filepath.Join(dir, "precious.txt")
	if err := os.WriteFile(mod, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bigmod := filepath.Join(dir, "bigmod")
	f, err := os.Create(bigmod)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(200 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	missing := filepath.Join(dir, "nonexist")
	up := []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", "-i", filepath.Join(dir, "r.img")}
	tests := []struct {
		name string
		args []string
		want string // the whole message, advice included
		code int
	}{
		{"module type", []string{"--module", mod + ",bogus"},
			"--module " + mod + `,bogus: bad boot module: type "bogus": unknown module type: want kmod, fs, splash or rndseed (check the --module files and their types, given as FILE,kmod, FILE,fs, FILE,splash or FILE,rndseed)`, 2},
		{"module larger than -m", []string{"-m", "64", "--module", bigmod},
			"--module " + bigmod + " is 200 MiB, more than the 64 MiB allowed (the guest's RAM must hold it whole: raise -m)", 1},
		{"boot flag", []string{"-a", "-Z console=com"},
			`-a: bad boot arguments: "-Z": unknown boot flag -Z (NetBSD knows -1 -2 -3 -4 -a -b -c -d -m -q -s -v -x -z) (check the boot flags and console=, console_addr=, console_speed=, root= in -a)`, 2},
		{"missing module", []string{"--module", missing},
			"--module " + missing + ": no such file or directory (check the path given with --module)", 1},
		{"module directory", []string{"--module", dir},
			"--module " + dir + " is a directory: not a regular file (check the path given with --module)", 1},
		{"type under multiboot", []string{"--boot", "multiboot", "--module", mod + ",bogus"},
			"--boot multiboot --module " + mod + ",bogus: up boots a NetBSD kernel, whose multiboot entry does not read boot modules; drop --boot, or use --boot netbsd, NetBSD's native handoff, which passes them", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runTestApp(t, []*cli.Command{upCommand()}, append(append(append([]string{}, up...), tt.args...), "rescue")...)
			if err == nil {
				t.Fatal("up succeeded")
			}
			msg := advise(err)
			if tt.code == 1 && strings.HasPrefix(tt.want, "fetch:") {
				if !strings.HasPrefix(msg, tt.want) {
					t.Errorf("message %q, want it to begin %q", msg, tt.want)
				}
			} else if msg != tt.want {
				t.Errorf("message\n%s\nwant\n%s", msg, tt.want)
			}
			if code := exitCode(err); code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
		})
	}
}
