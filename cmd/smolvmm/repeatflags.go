package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// The flag package keeps the last of a flag's values: kstrip -o a.out -o
// b.out wrote only b.out, run -m 64 -m 32 gave 32, without a word. The
// flags that take one value (withNames wraps them) record each value the
// command line gives them, under the name it was given with, and
// refuseRepeated refuses a second one. A flag that takes a list (-d, -p,
// --module, --keep) is repeated to give more values and records nothing.

// givenValue is one value of a flag on the command line, under the name
// it was given with.
type givenValue struct{ name, value string }

// flagRecord is what the command line gave a flag that takes one value,
// in order; each parse (Apply) starts it again.
type flagRecord struct{ given []givenValue }

// recordValues makes the flag set record, in r, what the command line
// gives the flag of names (its flag.Values are wrapped), refusing for a
// decimal one (a number flag) any value decimalOnly refuses. Its
// defaults and environment values are not set through them.
func (r *flagRecord) recordValues(set *flag.FlagSet, names []string, decimal bool) {
	r.given = r.given[:0]
	vals := make([]recordedValue, len(names)) // one allocation a flag
	for i, name := range names {
		if fl := set.Lookup(name); fl != nil {
			vals[i] = recordedValue{Value: fl.Value, name: name, to: r, decimal: decimal}
			fl.Value = &vals[i]
		}
	}
}

// recordedValue is a flag.Value that records each value set.
type recordedValue struct {
	flag.Value
	name    string
	to      *flagRecord
	decimal bool
}

func (v *recordedValue) Set(s string) error {
	if v.decimal {
		if err := decimalOnly(s); err != nil {
			return err
		}
	}
	if err := v.Value.Set(s); err != nil {
		return err
	}
	v.to.given = append(v.to.given, givenValue{v.name, s})
	return nil
}

// IsBoolFlag is the wrapped value's: the flag package takes no value
// after a switch.
func (v *recordedValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Get and Count are the wrapped value's, for urfave/cli's Context.Value
// and Context.Count.
func (v *recordedValue) Get() any {
	if g, ok := v.Value.(flag.Getter); ok {
		return g.Get()
	}
	return nil
}

func (v *recordedValue) Count() int {
	if c, ok := v.Value.(cli.Countable); ok {
		return c.Count()
	}
	return 0
}

// record is the flagRecord of f, a flag withNames wrapped, or nil for a
// flag that takes a list or that records nothing.
func record(f cli.Flag) *flagRecord {
	switch f := f.(type) {
	case *namedStringFlag:
		return &f.flagRecord
	case *namedBoolFlag:
		return &f.flagRecord
	case *namedIntFlag:
		return &f.flagRecord
	case *namedDurationFlag:
		return &f.flagRecord
	}
	return nil
}

// refuseRepeated refuses a flag that takes one value given more than once
// with different values (under one name: urfave/cli refuses two names
// itself, see twoFormsMessage). It runs before every command's action
// (withEmptyCheck).
func refuseRepeated(c *cli.Context) error {
	if c.Command == nil {
		return nil
	}
	for _, f := range c.Command.Flags {
		r := record(f)
		if r == nil {
			continue
		}
		for i, g := range r.given {
			var values []string
			for _, h := range r.given[i:] {
				if h.name == g.name {
					values = append(values, h.value)
				}
			}
			if len(values) > 1 && !allSame(values) {
				return usageErrorf("%s (see %s --help)", repeatedMessage(f, values), commandPath(c))
			}
		}
	}
	return nil
}

// allSame reports whether every value is the first: a flag given twice
// with one value (-v -v, -m 64 -m 64) says one thing, as shell aliases
// and scripts that add a flag the user also typed do.
func allSame(values []string) bool {
	for _, v := range values[1:] {
		if v != values[0] {
			return false
		}
	}
	return true
}

// repeatedMessage says that f, which takes one value, was given values.
func repeatedMessage(f cli.Flag, values []string) string {
	times := "twice"
	if len(values) > 2 {
		times = strconv.Itoa(len(values)) + " times"
	}
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = strconv.Quote(v)
	}
	last := len(quoted) - 1
	given := fmt.Sprintf("%s given %s (%s, then %s)",
		flagSpelling(f), times, strings.Join(quoted[:last], ", "), quoted[last])
	if _, ok := unwrapFlag(f).(*cli.BoolFlag); ok {
		return given + ": give a switch once"
	}
	return given + ": it takes one value; give it once"
}

// twoFormsMessage rewrites urfave/cli's refusal of a flag given under two
// of its names ("Cannot use two forms of the same flag: m memory"), which
// it makes even when the two say one thing (-m 64 --memory 64, -v
// --verbose): the names are one flag, to be given under one of them; a
// flag that takes one value given different values has them named too.
// ok is false for any other message.
func twoFormsMessage(c *cli.Context, msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "Cannot use two forms of the same flag: ")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, " ")
	f := findFlag(c, name)
	if f == nil {
		return "", false
	}
	names := namesOf(f)
	spelled := make([]string, len(names))
	for i, n := range names {
		spelled[i] = dashed(n)
	}
	if len(names[0]) > 1 && len(names) == 2 && len(names[1]) == 1 {
		spelled[0], spelled[1] = spelled[1], spelled[0] // -d and --disk
	}
	both := strings.Join(spelled, " and ")
	r := record(f)
	if r == nil {
		return both + " are one flag: give all its values under one name", true
	}
	values := make([]string, len(r.given))
	for i, g := range r.given {
		values[i] = strconv.Quote(g.value)
	}
	if len(values) > 1 && !allSame(values) {
		last := len(values) - 1
		return fmt.Sprintf("%s are one flag, given %s, then %s: it takes one value; give it once, under one name",
			both, strings.Join(values[:last], ", "), values[last]), true
	}
	return both + " are one flag: give it under one name", true
}
