package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/smolvmm/smolvmm/internal/termsafe"
)

// errorLine is how every error is printed: "smolvmm COMMAND: message", or
// "smolvmm: message" outside a command. A prefix the message already has
// ("smolvmm bench: ", "smolvmm: ", "kstrip: ") is not repeated. Control
// characters are escaped (termsafe.Line): a file name with a newline
// (-k $'a\nb') broke the one line docs/commands.md promises, and one with an
// escape sequence acted on the terminal. An error with more to say on
// lines of their own carries it apart (errorDetail).
func errorLine(command, msg string) string {
	prefix := commandPrefix(command)
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

// commandPrefix is what errorLine and noticeLine start a line with:
// "smolvmm COMMAND", or "smolvmm" outside a command.
func commandPrefix(command string) string {
	if command == "" {
		return "smolvmm"
	}
	return "smolvmm " + command
}

// noticeLine is how a warning or a note of the CLI is printed, as
// errorLine prints an error: "smolvmm COMMAND: KIND: message" (without
// command or kind, "smolvmm: message"), the message's control characters
// escaped (termsafe.Line). A message names files, networks and what a
// snapshot recorded, any of which may hold an escape sequence or a
// newline: written raw, it acted on the terminal or forged a line of
// smolvmm's.
func noticeLine(command, kind, msg string) string {
	prefix := commandPrefix(command)
	if kind != "" {
		prefix += ": " + kind
	}
	return prefix + ": " + termsafe.Line(msg)
}

// warnf writes on w a warning of command, one noticeLine.
func warnf(w io.Writer, command, format string, args ...any) {
	fmt.Fprintln(w, noticeLine(command, "warning", fmt.Sprintf(format, args...)))
}

// detailer is an error with lines to print after its one line: a crashed
// guest's registers (vmm.CrashError), a failed postinst script's output
// (imagebuilder.ScriptError). Its Error is one line.
type detailer interface{ Detail() string }

// errorDetail is the lines of err's detail, if it has one, each escaped
// (termsafe.Line: a script's output is anyone's) and indented under the
// error line, so that none of them passes for a line of smolvmm's own.
func errorDetail(err error) []string {
	var d detailer
	if !errors.As(err, &d) {
		return nil
	}
	text := strings.TrimRight(d.Detail(), "\n")
	if text == "" {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		lines = append(lines, "  "+termsafe.Line(strings.TrimSuffix(l, "\r")))
	}
	return lines
}

// errorText is errorLine, then err's detail on lines of their own.
func errorText(command, msg string, err error) string {
	return strings.Join(append([]string{errorLine(command, msg)}, errorDetail(err)...), "\n")
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
