package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

var errActionRan = errors.New("the command's action ran")

// stubActions makes every command of cmds (subcommands too) return
// errActionRan instead of doing its work.
func stubActions(cmds []*cli.Command) {
	for _, c := range cmds {
		c.Action = func(*cli.Context) error { return errActionRan }
		stubActions(c.Subcommands)
	}
}

// TestEmptyFlagValuesRefused gives every name of every string and
// string-list flag of every command an empty value: each is refused with
// status 2, naming the flag as the README does (flagSpelling), before the command does anything.
// Each was read as the flag left out (kstrip -o "" stripped KERNEL in
// place; run --snapshot "", --user "" and --chroot "" were ignored).
func TestEmptyFlagValuesRefused(t *testing.T) {
	type cmdPath struct {
		args []string // the words naming the command
		cmd  *cli.Command
	}
	var all []cmdPath
	for _, c := range commands() {
		all = append(all, cmdPath{[]string{c.Name}, c})
		for _, s := range c.Subcommands {
			all = append(all, cmdPath{[]string{c.Name, s.Name}, s})
		}
	}
	checked := 0
	for _, cp := range all {
		for _, f := range cp.cmd.Flags {
			switch f.(type) {
			case *cli.StringFlag, *cli.StringSliceFlag:
			default:
				continue
			}
			if emptyAllowed(f.Names()[0]) {
				continue
			}
			for _, name := range f.Names() {
				args := append([]string{"smolvmm"}, cp.args...)
				// Required flags first, so that it is the empty value that is refused.
				for _, rf := range cp.cmd.Flags {
					if r, ok := rf.(cli.RequiredFlag); ok && r.IsRequired() && rf != f {
						args = append(args, dashed(rf.Names()[0]), "x")
					}
				}
				args = append(args, dashed(name), "")
				t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
					cmds := commands()
					stubActions(cmds)
					var out bytes.Buffer
					err := testApp(cmds, &out, &out).Run(args)
					if errors.Is(err, errActionRan) || err == nil {
						t.Fatalf("not refused: %v", err)
					}
					if code := exitCode(err); code != 2 {
						t.Errorf("exit status %d, want 2: %v", code, err)
					}
					if want := flagSpelling(f) + ` "": want `; !strings.HasPrefix(err.Error(), want) {
						t.Errorf("error %q, want it to start %q", err, want)
					}
				})
				checked++
			}
		}
	}
	// The flags the audit found, at least.
	if checked < 40 {
		t.Errorf("checked %d flag names, expected more", checked)
	}
}

// TestEmptyFlagValuesBinary runs the empty values the audit found in the
// program itself: status 2, one line naming the flag, nothing done.
func TestEmptyFlagValuesBinary(t *testing.T) {
	bin := smolvmmBin(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--user", "", "-k", "/nonexistent"}, `smolvmm run: --user "": want USER, not an empty value (see smolvmm run --help)`},
		{[]string{"run", "--chroot", "", "-k", "/nonexistent"}, `smolvmm run: --chroot "": want DIR, not an empty value (see smolvmm run --help)`},
		{[]string{"demo", "--user", ""}, `smolvmm demo: --user "": want USER, not an empty value (see smolvmm demo --help)`},
		{[]string{"demo", "--chroot", ""}, `smolvmm demo: --chroot "": want DIR, not an empty value (see smolvmm demo --help)`},
		{[]string{"run", "--restore", ""}, `smolvmm run: --restore "": want FILE, not an empty value`},
		{[]string{"run", "--snapshot", "", "-k", "/nonexistent"}, `smolvmm run: --snapshot "": want FILE, not an empty value`},
		{[]string{"bench", "--json", "", "-n", "1"}, `smolvmm bench: --json "": want FILE, not an empty value`},
		{[]string{"mkimg", "-i", ""}, `smolvmm mkimg: -i "": want FILE, not an empty value`},
		{[]string{"net", "--leases", ""}, `smolvmm net: --leases "": want FILE, not an empty value`},
		{[]string{"run", "-d", "disk.img", "-d", ""}, `smolvmm run: -d "": want IMAGE, not an empty value`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("exit %v, want status 2; stderr: %s", err, stderr.String())
			}
			msg := strings.TrimSuffix(stderr.String(), "\n")
			if !strings.HasPrefix(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("stderr %q\nwant one line starting %q", msg, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing (the guest must not start)", stdout.String())
			}
			if ents, _ := os.ReadDir(cmd.Dir); len(ents) != 0 {
				t.Errorf("wrote %s in the working directory", ents[0].Name())
			}
		})
	}
}

// TestKstripEmptyOutputKeepsKernel: kstrip -o "" stripped KERNEL in place
// (a read-only one too, as root) and said so with status 0.
func TestKstripEmptyOutputKeepsKernel(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	if err := os.Chmod(kern, 0o444); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, kern)
	_, errOut, code := runKstripCLI("-o", "", kern)
	if code != 2 || !strings.Contains(errOut, `-o "": want OUT, not an empty value`) {
		t.Errorf("exit %d, %q; want status 2 naming -o", code, errOut)
	}
	if !bytes.Equal(mustRead(t, kern), before) {
		t.Error("the kernel was rewritten")
	}
}

// TestUnexpandedTildeRefused: a path flag's value the shell left with its
// ~ (--cache=~/x, a quoted "~/x") is refused with status 2, saying what
// to give, before the command does anything: fetch --cache=~/x made a
// directory named ~ in the working directory. Where a directory really
// named ~ is there, and for the flags whose value is no path, ~ is left
// alone.
func TestUnexpandedTildeRefused(t *testing.T) {
	bin := smolvmmBin(t)
	tests := []struct {
		args    []string
		mkTilde bool // a directory named ~ in the working directory
		want    string
	}{
		{[]string{"fetch", "--cache=~/x"}, false, `smolvmm fetch: --cache "~/x": the shell left ~ as it is (it expands it only at the start of a word, not after = or in quotes): give --cache $HOME/x`},
		{[]string{"run", "-k", "/nonexistent", "-d", "~/disk.img,ro"}, false, `smolvmm run: -d "~/disk.img,ro": the shell left ~ as it is`},
		{[]string{"mkimg", "-i", "~"}, false, `smolvmm mkimg: -i "~": the shell left ~ as it is`},
		// The path of --net user:PATH: the advice to start the network
		// said "smolvmm net --socket ~/x.sock", which the shell expands,
		// and the user went round in a circle.
		{[]string{"run", "-k", "/nonexistent", "--net", "user:~/x.sock"}, false, `smolvmm run: --net "user:~/x.sock": the shell left ~ as it is (it expands it only at the start of a word, not after = or in quotes): give --net user:$HOME/x.sock`},
		{[]string{"run", "-k", "/nonexistent", "--net=user:~/x.sock"}, true, `smolvmm run: --net user:~/x.sock: shared network is not running`},
		{[]string{"run", "-k", "~/k"}, true, `smolvmm run: read kernel: open ~/k`},
		{[]string{"run", "-k", "/nonexistent", "--ready", "~/x"}, false, `smolvmm run: read kernel: open /nonexistent`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = t.TempDir()
			if tt.mkTilde {
				if err := os.Mkdir(cmd.Dir+"/~", 0o755); err != nil {
					t.Fatal(err)
				}
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			msg := strings.TrimSuffix(stderr.String(), "\n")
			if !strings.HasPrefix(msg, tt.want) {
				t.Fatalf("stderr %q\nwant it to start %q", msg, tt.want)
			}
			if refused := strings.Contains(msg, "the shell left ~"); refused {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
					t.Errorf("exit %v, want status 2", err)
				}
				if ents, _ := os.ReadDir(cmd.Dir); len(ents) != 0 {
					t.Errorf("made %s in the working directory", ents[0].Name())
				}
			}
		})
	}
}
