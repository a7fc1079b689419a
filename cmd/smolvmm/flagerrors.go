package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/vmm"
)

// flagWant says what a flag's value must be, for the flags whose values
// have limits; "" for the others, described by their kind (wantOfKind).
// A function, not a map: nothing is built at init (inittrace_test.go).
func flagWant(name string) string {
	switch name {
	case "memory":
		return fmt.Sprintf("want a whole number of MiB between %d and %d", vmm.MinMemoryMiB, vmm.MaxMemoryMiB)
	case "ready-port":
		return "want a TCP port between 1 and 65535"
	case "uid":
		return "want a numeric user id"
	case "gid":
		return "want a numeric group id"
	case "boots":
		return "want a whole number of boots, at least 1"
	case "warmup":
		return "want a whole number of boots, 0 or more"
	case "parallel":
		return "want a whole number of VMs, at least 1"
	}
	return ""
}

// errNotDecimal is decimalOnly's refusal, which flagParseMessage finds
// in the flag package's error.
var errNotDecimal = errors.New("not in decimal")

// decimalOnly refuses a number flag's value that Go's syntax, which the
// flag package parses, would not read as decimal: a leading 0 (octal:
// --uid 01750 ran as uid 1000, where --user 01750 is uid 1750), a 0x,
// 0o or 0b prefix, or _ between digits. Anything else is left to the
// flag's own parse.
func decimalOnly(s string) error {
	digits := s
	if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
		digits = digits[1:]
	}
	if len(digits) > 1 && digits[0] == '0' || strings.Contains(digits, "_") {
		return errNotDecimal
	}
	return nil
}

// dashed is a flag's name as it is written: -m, --timeout.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagSpelling is how messages name f: its one-letter name when it has
// one (-m, -k, -o, -n, -p), as the README writes it, else its long name
// (--timeout). A message cannot echo what was typed: urfave/cli sets
// every name of a flag given by any one of them, so which it was is lost.
func flagSpelling(f cli.Flag) string {
	names := namesOf(f)
	for _, n := range names {
		if len(n) == 1 {
			return dashed(n)
		}
	}
	return dashed(names[0])
}

// findFlag is the flag of c's command (or of the program) that has name.
func findFlag(c *cli.Context, name string) cli.Flag {
	var flags []cli.Flag
	if c.Command != nil {
		flags = c.Command.Flags
	}
	if c.App != nil {
		flags = append(flags[:len(flags):len(flags)], c.App.Flags...)
	}
	for _, f := range flags {
		for _, n := range namesOf(f) {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// wantOfKind says what a flag of f's kind takes.
func wantOfKind(f cli.Flag) string {
	switch unwrapFlag(f).(type) {
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		return "want a whole number"
	case *cli.DurationFlag:
		return "want a duration such as 90s, 2m or 1m30s"
	case *cli.Float64Flag:
		return "want a number"
	}
	return "not a value this flag takes"
}

// flagParseMessage rewrites a parse error of the flag package, which
// urfave/cli passes on, in the wording of this program's other refusals
// of a flag's value (-m "abc": want ...): the flag as flagSpelling names
// it (the flag package writes the name typed, one dash: -timeout), the value, and what is wanted (it
// said "parse error"). It returns msg as it was when it is no such error.
func flagParseMessage(c *cli.Context, msg string) string {
	if m, ok := twoFormsMessage(c, msg); ok { // repeatflags.go
		return m
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		value, name, ok := quotedAndFlag(rest, " for flag -")
		if f := findFlag(c, name); ok && f != nil {
			want := flagWant(namesOf(f)[0])
			if want == "" {
				want = wantOfKind(f)
			}
			if strings.HasSuffix(rest, ": "+errNotDecimal.Error()) {
				return fmt.Sprintf("%s %s: give it in decimal, without a leading 0, a 0x, 0o or 0b prefix or _; %s", flagSpelling(f), value, want)
			}
			return fmt.Sprintf("%s %s: %s", flagSpelling(f), value, want)
		}
		return msg
	}
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if value, name, ok := quotedAndFlag(rest, " for -"); ok {
			v, _ := strconv.Unquote(value)
			spelled := dashed(name)
			if f := findFlag(c, name); f != nil {
				spelled = flagSpelling(f)
			}
			return fmt.Sprintf("%s=%s: a switch takes no value, or =true or =false", spelled, v)
		}
		return msg
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag " + dashed(name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		if f := findFlag(c, name); f != nil {
			return flagSpelling(f) + " needs a value"
		}
		return dashed(name) + " needs a value"
	}
	return msg
}

// quotedAndFlag splits `"VALUE"<sep>NAME: reason` into the quoted value
// (quotes kept) and NAME.
func quotedAndFlag(s, sep string) (value, name string, ok bool) {
	value, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", false
	}
	rest, ok := strings.CutPrefix(s[len(value):], sep)
	if !ok {
		return "", "", false
	}
	name, _, ok = strings.Cut(rest, ": ")
	return value, name, ok && name != ""
}
