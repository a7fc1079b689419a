package main

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// allFlags is every flag of cmds and their subcommands.
func allFlags(cmds []*cli.Command) []cli.Flag {
	var fs []cli.Flag
	for _, c := range cmds {
		fs = append(fs, c.Flags...)
		fs = append(fs, allFlags(c.Subcommands)...)
	}
	return fs
}

// TestNamesOf checks namesOf against urfave/cli's own Names for every
// flag smolvmm has: a flag type namesOf does not know falls back to Names,
// a known one must give the same names.
func TestNamesOf(t *testing.T) {
	fs := allFlags(commands())
	if len(fs) < 50 {
		t.Fatalf("%d flags in all commands, want at least 50", len(fs))
	}
	for _, f := range fs {
		if got, want := namesOf(f), f.Names(); !slices.Equal(got, want) {
			t.Errorf("namesOf(%T %q) = %q, want %q", f, want[0], got, want)
		}
	}
}

// TestCommandsAllocateLittle bounds the allocations of building the
// commands, which every start pays before parsing its own: with
// urfave/cli's Names (a regular expression per name) in up's flag merge
// it took 408 allocations for 127 flags (3.2 a flag); without, 259 (2.0).
func TestCommandsAllocateLittle(t *testing.T) {
	n := len(allFlags(commands()))
	allocs := testing.AllocsPerRun(10, func() { commands() })
	if perFlag := allocs / float64(n); perFlag > 2.6 {
		t.Errorf("building the commands: %.0f allocations for %d flags, %.1f a flag, want at most 2.6 (is a flag's Names called while building them?)", allocs, n, perFlag)
	}
}

// TestRunParseAllocatesLittle bounds the allocations of parsing run's
// command line, which every VM start pays before its first KVM_RUN: 620
// with the flags withNames wraps, 2,860 when urfave/cli asks each flag's
// Names (a regular-expression replace per name, for every lookup).
func TestRunParseAllocatesLittle(t *testing.T) {
	allocs := testing.AllocsPerRun(5, func() {
		cmd := runCommand()
		cmd.Action = func(*cli.Context) error { return nil }
		if err := newApp([]*cli.Command{cmd}).Run([]string{"smolvmm", "run", "-k", "x", "--net", "none", "-a", "y"}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1000 {
		t.Errorf("parsing run's command line: %.0f allocations, want at most 1000 (are the flags' Names urfave/cli's again?)", allocs)
	}
}

// TestWithNames checks that newApp wraps every flag of every command
// (subcommands too), that the wrapper's Names are the flag's, and that
// unwrapFlag gives back the flag itself.
func TestWithNames(t *testing.T) {
	raw := allFlags(commands())
	app := newApp(commands())
	wrapped := allFlags(app.Commands)
	if len(wrapped) != len(raw) {
		t.Fatalf("%d flags after newApp, %d before", len(wrapped), len(raw))
	}
	for i, f := range wrapped {
		u := unwrapFlag(f)
		if u == f {
			t.Errorf("flag %q (%T) not wrapped", f.Names()[0], f)
			continue
		}
		if got, want := f.Names(), raw[i].Names(); !slices.Equal(got, want) {
			t.Errorf("wrapped flag's Names %q, want %q", got, want)
		}
		if got, want := u.String(), raw[i].String(); got != want {
			t.Errorf("unwrapped flag's help line %q, want %q", got, want)
		}
		if f.String() != u.String() {
			t.Errorf("wrapped flag's help line %q, want the flag's own %q", f.String(), u.String())
		}
	}
	// Once wrapped, a flag is left as it is.
	if f := wrapped[0]; withNamesFlag(f) != f {
		t.Errorf("withNamesFlag wrapped %T again", f)
	}
}
