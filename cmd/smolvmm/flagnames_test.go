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
