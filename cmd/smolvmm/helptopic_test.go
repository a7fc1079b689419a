package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestHelpUnknownTopic: help about no command is a command-line mistake,
// status 2 and one line, as an unknown command is (urfave/cli answered
// "No help topic for 'nosuch'" with status 3); help about a command still
// shows it.
func TestHelpUnknownTopic(t *testing.T) {
	tests := []struct {
		args   []string
		status int
		stdout string // in stdout
		stderr string // all of stderr
	}{
		{[]string{"help", "nosuch"}, 2, "", `smolvmm: help nosuch: unknown command "nosuch" (smolvmm --help lists the commands)`},
		{[]string{"h", "nosuch"}, 2, "", `smolvmm: help nosuch: unknown command "nosuch" (smolvmm --help lists the commands)`},
		{[]string{"run", "help", "nosuch"}, 2, "", `smolvmm run: help nosuch: unknown command "nosuch" (see smolvmm run --help)`},
		{[]string{"bogus"}, 2, "", `smolvmm: unknown command "bogus" (smolvmm --help lists the commands)`},
		{[]string{"help", "run"}, 0, "smolvmm run - boot a kernel", ""},
		{[]string{"help"}, 0, "COMMANDS:", ""},
		// urfave/cli took the argument after --help as a help topic:
		// "No help topic for 'extra'", status 3; help with two topics
		// showed the first with status 0.
		{[]string{"run", "-h", "extra"}, 2, "", `smolvmm run: unexpected argument "extra" after --help: smolvmm run --help takes no argument (it shows run's help)`},
		{[]string{"run", "--help", "extra"}, 2, "", `smolvmm run: unexpected argument "extra" after --help: smolvmm run --help takes no argument (it shows run's help)`},
		{[]string{"-h", "extra"}, 2, "", `smolvmm: unknown command "extra" after --help (smolvmm --help lists the commands)`},
		{[]string{"help", "run", "extra"}, 2, "", `smolvmm: help run extra: unexpected argument "extra": help takes one command (smolvmm --help lists the commands)`},
		// smolvmm's own -h and --help showed the first topic's help with
		// status 0 and dropped the rest, as help did.
		{[]string{"-h", "run", "extra"}, 2, "", `smolvmm: --help run extra: unexpected argument "extra": --help takes one command (smolvmm --help lists the commands)`},
		{[]string{"--help", "run", "extra"}, 2, "", `smolvmm: --help run extra: unexpected argument "extra": --help takes one command (smolvmm --help lists the commands)`},
		{[]string{"--help", "run", "-k"}, 2, "", `smolvmm: --help run -k: unexpected argument "-k": --help takes one command (smolvmm --help lists the commands)`},
		{[]string{"-h=false", "run", "-h"}, 0, "smolvmm run - boot a kernel", ""},
		{[]string{"--help", "run"}, 0, "smolvmm run - boot a kernel", ""},
		{[]string{"run", "-h"}, 0, "smolvmm run - boot a kernel", ""},
	}
	for _, c := range commands() {
		for _, h := range []string{"-h", "--help"} {
			want := fmt.Sprintf(`smolvmm %s: unexpected argument "x" after --help: smolvmm %s --help takes no argument (it shows %s's help)`, c.Name, c.Name, c.Name)
			tests = append(tests, struct {
				args   []string
				status int
				stdout string
				stderr string
			}{[]string{c.Name, h, "x"}, 2, "", want})
		}
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, status := runCLI(t, tt.args...)
			if status != tt.status || !strings.Contains(stdout, tt.stdout) || strings.TrimSpace(stderr) != tt.stderr {
				t.Errorf("status %d, stdout %q, stderr %q; want %d, %q in stdout, stderr %q", status, stdout, stderr, tt.status, tt.stdout, tt.stderr)
			}
		})
	}
}
