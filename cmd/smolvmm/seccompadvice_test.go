package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestNoSeccompAdviceParses: the command line a refused call's report (and
// a failed install) advises is one smolvmm accepts. "smolvmm --no-seccomp"
// put the option before the command, which refuses it as an unknown flag.
func TestNoSeccompAdviceParses(t *testing.T) {
	n := 0
	for _, cmd := range commands() {
		if cmd.Hidden {
			continue // bench's boot child: advised as bench (userCommand)
		}
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
	if n < 4 { // run, up, net, bench at least
		t.Errorf("%d commands take --no-seccomp; want at least 4", n)
	}
}

// TestUserCommandOfBenchChild: the boot child bench runs (smolvmm bench
// boot) is advised as bench, which the user typed;
// the others as themselves.
func TestUserCommandOfBenchChild(t *testing.T) {
	app := newApp(commands())
	want := map[string]string{"boot": "bench", "run": "run", "up": "up", "net": "net"}
	for _, cmd := range append(app.Commands, benchBootCommand()) {
		w, ok := want[cmd.Name]
		if !ok {
			continue
		}
		delete(want, cmd.Name)
		c := cli.NewContext(app, nil, nil)
		c.Command = cmd
		if got := userCommand(c); got != w {
			t.Errorf("userCommand of %s = %q, want %q", cmd.Name, got, w)
		}
	}
	for name := range want {
		t.Errorf("no command %s", name)
	}
}
