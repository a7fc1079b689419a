package main

import (
	"strings"

	"github.com/smolvmm/smolvmm/internal/termsafe"
)

// errorLine is how every error is printed: "smolvmm COMMAND: message", or
// "smolvmm: message" outside a command. A prefix the message already has
// ("smolvmm bench: ", "smolvmm: ", "kstrip: ") is not repeated. Control
// characters are escaped (termsafe.Line): a file name with a newline
// (-k $'a\nb') broke the one line the README promises, and one with an
// escape sequence acted on the terminal.
func errorLine(command, msg string) string {
	prefix := "smolvmm"
	if command != "" {
		prefix += " " + command
	}
	for {
		rest := msg
		for _, p := range []string{prefix + ": ", "smolvmm: ", command + ": "} {
			if p != ": " {
				rest = strings.TrimPrefix(rest, p)
			}
		}
		if rest == msg {
			break
		}
		msg = rest
	}
	return prefix + ": " + termsafe.Line(msg)
}

// commandName is the command args run: the first argument after the
// program's name that is not a flag, when it names a command.
func commandName(args []string) string {
	for _, a := range args[min(1, len(args)):] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		for _, c := range commands() {
			if c.Name == a || containsString(c.Aliases, a) {
				return c.Name
			}
		}
		return ""
	}
	return ""
}

// commandAfterFlags is the first argument after the program's name that
// names a command, past an unknown flag's value (smolvmm --kernel k run):
// smolvmm's own flags take none, so a flag it does not know may have one.
func commandAfterFlags(args []string) string {
	for _, a := range args[min(1, len(args)):] {
		for _, c := range commands() {
			if c.Name == a || containsString(c.Aliases, a) {
				return c.Name
			}
		}
	}
	return ""
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
