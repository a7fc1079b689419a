package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestNumberFlagsDecimal: every number flag of every command (walked
// from the app, so that a flag added later is covered too) refuses a
// value that is not plain decimal, status 2, naming the flag: the flag
// package read them in Go's syntax, so demo -m 0100 gave 64 MiB, bench
// -n 010 8 boots and --uid 01750 uid 1000 (where --user 01750 is 1750).
func TestNumberFlagsDecimal(t *testing.T) {
	bin := smolvmmBin(t)
	type numberFlag struct {
		path []string
		flag cli.Flag
	}
	var flags []numberFlag
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := append(path[:len(path):len(path)], c.Name)
			for _, f := range c.Flags {
				switch unwrapFlag(f).(type) {
				case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
					flags = append(flags, numberFlag{p, f})
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, newApp(commands()).Commands)
	if len(flags) < 10 {
		t.Fatalf("found %d number flags, want every one (run -m, bench -n, demo --uid, ...)", len(flags))
	}
	for _, nf := range flags {
		for _, v := range []string{"010", "0x10", "0o10", "0b10", "1_000", "-01"} {
			name := namesOf(nf.flag)[0]
			t.Run(strings.Join(nf.path, "-")+"-"+name+"="+v, func(t *testing.T) {
				cmd := exec.Command(bin, append(nf.path, dashed(name)+"="+v)...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				err := cmd.Run()
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
					t.Errorf("exit %v, want status 2; stderr: %s", err, stderr.String())
				}
				want := flagSpelling(nf.flag) + ` "` + v + `": give it in decimal, without a leading 0`
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q lacks %q", stderr.String(), want)
				}
			})
		}
	}
}

// TestDecimalOnly: what a number flag takes, and what it refuses as not
// plain decimal (the rest is the flag's own parse's to refuse).
func TestDecimalOnly(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"0", true}, {"10", true}, {"-1", true}, {"+5", true}, {"-0", true}, {"", true}, {"abc", true},
		{"00", false}, {"010", false}, {"0x10", false}, {"0X10", false}, {"0o7", false}, {"0b1", false},
		{"-010", false}, {"+0x1", false}, {"1_000", false},
	} {
		if err := decimalOnly(tt.in); (err == nil) != tt.ok {
			t.Errorf("decimalOnly(%q) = %v, want ok %v", tt.in, err, tt.ok)
		}
	}
}

// TestMkimgNumbersDecimal: mkimg's -m and --timestamp, string flags that
// TestNumberFlagsDecimal does not walk, read decimal as docs/commands.md says: a
// leading 0 ignored (0100 is 100, not octal 64), a prefix or _ refused.
func TestMkimgNumbersDecimal(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	for _, tt := range []struct {
		in   string
		want int64 // -1: refused
	}{
		{"0100", 100}, {"100", 100}, {"0x10", -1}, {"0o10", -1}, {"0b10", -1}, {"1_000", -1},
	} {
		mb, _, err := parseMegabytes(tt.in)
		if (err != nil) != (tt.want < 0) || err == nil && int64(mb) != tt.want {
			t.Errorf("-m %s: %d MiB, %v; want %d (-1: refused)", tt.in, mb, err, tt.want)
		}
		ts, err := parseTimestamp(tt.in)
		if (err != nil) != (tt.want < 0) || err == nil && ts != tt.want {
			t.Errorf("--timestamp %s: %d, %v; want %d (-1: refused)", tt.in, ts, err, tt.want)
		}
	}
}
