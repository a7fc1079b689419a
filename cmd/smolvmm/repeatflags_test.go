package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestRepeatedFlagRefused gives every flag of every command that takes
// one value (a string, a number, a duration, a switch) twice, with two
// values: each is
// refused with status 2, naming the flag and both values, before the
// command does anything. The flag package kept the last value silently
// (kstrip -o a.out -o b.out wrote only b.out; run -m 64 -m 32 gave 32).
// The flags that take a list (-d, -p, --module, --keep) are repeated to
// give more values, and stay so.
func TestRepeatedFlagRefused(t *testing.T) {
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
	checked, lists := 0, 0
	for _, cp := range all {
		for _, f := range cp.cmd.Flags {
			var first, second string
			list := false
			switch f.(type) {
			case *cli.StringFlag:
				first, second = "a", "b"
			case *cli.IntFlag:
				first, second = "1", "2"
			case *cli.DurationFlag:
				first, second = "1s", "2s"
			case *cli.BoolFlag:
				first, second = "true", "false"
			case *cli.StringSliceFlag:
				first, second, list = "a", "b", true
			default:
				t.Errorf("%s %s: a flag of type %T: say whether it may be given twice", cp.args[0], f.Names()[0], f)
				continue
			}
			name := f.Names()[0]
			args := append([]string{"smolvmm"}, cp.args...)
			// Required flags first, so that it is the repeat that is refused.
			for _, rf := range cp.cmd.Flags {
				if r, ok := rf.(cli.RequiredFlag); ok && r.IsRequired() && rf.Names()[0] != name {
					args = append(args, dashed(rf.Names()[0]), "x")
				}
			}
			if _, ok := f.(*cli.BoolFlag); ok {
				args = append(args, dashed(name)+"="+first, dashed(name)+"="+second)
			} else {
				args = append(args, dashed(name), first, dashed(name), second)
			}
			t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
				cmds := commands()
				stubActions(cmds) // emptyflags_test.go
				var out bytes.Buffer
				err := testApp(cmds, &out, &out).Run(args)
				if list {
					if err != nil && strings.Contains(err.Error(), "given twice") {
						t.Errorf("a list flag given twice refused: %v", err)
					}
					return
				}
				if errors.Is(err, errActionRan) || err == nil {
					t.Fatalf("not refused: %v", err)
				}
				if code := exitCode(err); code != 2 {
					t.Errorf("exit status %d, want 2: %v", code, err)
				}
				want := flagSpelling(f) + ` given twice ("` + first + `", then "` + second + `")`
				if !strings.HasPrefix(err.Error(), want) {
					t.Errorf("error %q, want it to start %q", err, want)
				}
			})
			if list {
				lists++
			} else {
				checked++
			}
		}
	}
	if checked < 60 || lists < 5 {
		t.Errorf("checked %d one-value flags and %d list flags, expected more", checked, lists)
	}
}

// TestRepeatedFlagForms: a flag given under each of its names (-m and
// --memory) is given twice as well; urfave/cli said "Cannot use two forms
// of the same flag: m memory". A list flag may take its values under
// either name... as urfave/cli allows it: it refuses the mix, said in
// this program's words. A flag given once, or each once, is not refused.
func TestRepeatedFlagForms(t *testing.T) {
	tests := []struct {
		args []string
		want string // "": the action runs
	}{
		{[]string{"run", "-m", "64", "--memory", "32"}, `-m and --memory are one flag, given "64", then "32": it takes one value; give it once, under one name (see smolvmm run --help)`},
		{[]string{"kstrip", "--output", "a.out", "-o", "b.out", "k"}, `-o and --output are one flag, given "a.out", then "b.out": it takes one value; give it once, under one name (see smolvmm kstrip --help)`},
		{[]string{"run", "-k", "a", "-k", "b", "-k", "c"}, `-k given 3 times ("a", "b", then "c"): it takes one value; give it once (see smolvmm run --help)`},
		// One value under both names says one thing, but urfave/cli
		// refuses the two names: the message says so, not "given twice".
		{[]string{"run", "-k", "a", "-m", "64", "--memory", "64"}, `-m and --memory are one flag: give it under one name (see smolvmm run --help)`},
		{[]string{"run", "-k", "a", "-v", "--verbose"}, `-v and --verbose are one flag: give it under one name (see smolvmm run --help)`},
		{[]string{"bench", "--boots", "3", "-n", "3"}, `-n and --boots are one flag: give it under one name (see smolvmm bench --help)`},
		{[]string{"run", "-d", "a.img", "--disk", "b.img"}, `-d and --disk are one flag: give all its values under one name (see smolvmm run --help)`},
		{[]string{"run", "-m", "64", "-k", "a", "-d", "a.img", "-d", "b.img", "-v"}, ""},
		// The same value twice says one thing.
		{[]string{"run", "-k", "a", "-v", "-v", "-m", "64", "-m", "64"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmds := commands()
			stubActions(cmds)
			var out bytes.Buffer
			err := testApp(cmds, &out, &out).Run(append([]string{"smolvmm"}, tt.args...))
			if tt.want == "" {
				if !errors.Is(err, errActionRan) {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want || exitCode(err) != 2 {
				t.Errorf("err %v (status %d), want %q, status 2", err, exitCode(err), tt.want)
			}
		})
	}
}

// TestRepeatedFlagBinary runs the repeats the audit found: status 2, one
// line, nothing done (no kernel written, no VM started).
func TestRepeatedFlagBinary(t *testing.T) {
	bin := smolvmmBin(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"kstrip", "-o", "a.out", "-o", "b.out", "k"}, `smolvmm kstrip: -o given twice ("a.out", then "b.out"): it takes one value; give it once (see smolvmm kstrip --help)`},
		{[]string{"run", "-k", "demo.elf", "-k", "nbboot.elf"}, `smolvmm run: -k given twice ("demo.elf", then "nbboot.elf"): it takes one value; give it once (see smolvmm run --help)`},
		{[]string{"run", "-k", "demo.elf", "-m", "64", "-m", "32"}, `smolvmm run: -m given twice ("64", then "32"): it takes one value; give it once (see smolvmm run --help)`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "k"), []byte("kernel"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("exit %v, want status 2; stderr: %s", err, stderr.String())
			}
			if got := strings.TrimSuffix(stderr.String(), "\n"); got != tt.want {
				t.Errorf("stderr %q\nwant %q", got, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("%d files in the working directory, want only k", len(ents))
			}
		})
	}
}
