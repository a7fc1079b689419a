package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

// TestNoSeccompAdviceParses: the command line a refused call's report (and
// a failed install) advises is one smolvmm accepts. "smolvmm --no-seccomp"
// put the option before the command, which refuses it as an unknown flag.
func TestNoSeccompAdviceParses(t *testing.T) {
	n := 0
	for _, cmd := range commands() {
		takes := false
		for _, f := range cmd.Flags {
			takes = takes || slices.Contains(namesOf(f), "no-seccomp")
		}
		if !takes {
			continue
		}
		n++
		advice := noSeccompAdvice(cmd.Name)
		open, end := strings.Index(advice, "("), strings.Index(advice, " turns")
		if open < 0 || end < open {
			t.Errorf("%s: advice %q names no command line", cmd.Name, advice)
			continue
		}
		args := append(strings.Fields(advice[open+1:end]), "--help")
		app := newApp(commands())
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		if err := app.Run(args); err != nil {
			t.Errorf("%s: the advised %q: %v", cmd.Name, strings.Join(args, " "), err)
		}
	}
	if n < 3 { // run, up, net at least
		t.Errorf("%d commands take --no-seccomp; want at least 3", n)
	}
}
