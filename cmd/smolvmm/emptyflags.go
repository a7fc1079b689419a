package main

import (
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// emptyAllowed names the flags for which an empty value means something:
// -a "" boots the kernel with no arguments after its name, and kstrip's
// --keep "" is refused with advice of its own.
func emptyAllowed(name string) bool {
	return name == "append" || name == "keep"
}

// refuseEmptyValues refuses a flag given an empty value (-o "", --user "",
// -d ""). The commands read "" as the flag being absent, so such a value
// did what leaving the flag out does, silently: kstrip -o "" stripped the
// kernel in place, run --user "" stayed root, --snapshot "" wrote nothing.
// It runs before every command's action (newApp chains it in Before) and
// looks only at the flags set on the command line.
func refuseEmptyValues(c *cli.Context) error {
	if c.Command == nil {
		return nil
	}
	for _, name := range c.LocalFlagNames() {
		f := findFlag(c, name)
		if f == nil || emptyAllowed(namesOf(f)[0]) {
			continue
		}
		empty := false
		switch unwrapFlag(f).(type) {
		case *cli.StringFlag:
			empty = c.String(name) == ""
		case *cli.StringSliceFlag:
			for _, v := range c.StringSlice(name) {
				empty = empty || v == ""
			}
		}
		if empty {
			return usageErrorf("%s \"\": %s (see %s --help)", flagSpelling(f), wantNonEmpty(f), commandPath(c))
		}
	}
	return nil
}

// tildeNotPath names the flags whose value is no path, where a leading ~
// is the user's text (a regular expression, the kernel's command line).
func tildeNotPath(name string) bool {
	return name == "append" || name == "ready"
}

// refuseUnexpandedTilde refuses a path flag whose value starts with "~/"
// (or is "~"), and --net user:~/PATH, where the working directory has nothing named "~": the shell
// expands ~ only at the start of a word, so --cache=~/x and a quoted "~/x"
// reach smolvmm as they are, and a directory named "~" was made in the
// working directory.
func refuseUnexpandedTilde(c *cli.Context) error {
	if c.Command == nil {
		return nil
	}
	for _, name := range c.LocalFlagNames() {
		f := findFlag(c, name)
		if f == nil || tildeNotPath(namesOf(f)[0]) {
			continue
		}
		var values []string
		switch unwrapFlag(f).(type) {
		case *cli.StringFlag:
			values = []string{c.String(name)}
		case *cli.StringSliceFlag:
			values = c.StringSlice(name)
		}
		for _, v := range values {
			// --net user:PATH names a path after its "user:".
			kind, path := "", v
			if rest, ok := strings.CutPrefix(v, "user:"); ok && namesOf(f)[0] == "net" {
				kind, path = "user:", rest
			}
			if path != "~" && !strings.HasPrefix(path, "~/") {
				continue
			}
			if _, err := os.Lstat("~"); err == nil {
				continue // a directory really named ~, which may be meant
			}
			return usageErrorf("%s %q: the shell left ~ as it is (it expands it only at the start of a word, not after = or in quotes): give %s %s$HOME%s", flagSpelling(f), v, flagSpelling(f), kind, strings.TrimPrefix(path, "~"))
		}
	}
	return nil
}

// wantNonEmpty says what an empty value of f should have been, with the
// placeholder of its help line (FILE, DIR, USER).
func wantNonEmpty(f cli.Flag) string {
	if df, ok := f.(cli.DocGenerationFlag); ok {
		if _, rest, ok := strings.Cut(df.GetUsage(), "`"); ok {
			if placeholder, _, ok := strings.Cut(rest, "`"); ok && placeholder != "" {
				return "want " + placeholder + ", not an empty value"
			}
		}
	}
	return "want a value, not an empty one"
}

// commandPath is "smolvmm CMD" for c's command, as help is asked for.
func commandPath(c *cli.Context) string {
	name := "smolvmm"
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != name {
		name += " " + c.Command.Name
	}
	return name
}

// withEmptyCheck runs refuseRepeated (repeatflags.go), refuseEmptyValues
// and refuseUnexpandedTilde before each command of cmds (and of their
// subcommands), ahead of the command's own Before.
func withEmptyCheck(cmds []*cli.Command) {
	for _, c := range cmds {
		before := c.Before
		c.Before = func(ctx *cli.Context) error {
			if err := refuseRepeated(ctx); err != nil {
				return err
			}
			if err := refuseEmptyValues(ctx); err != nil {
				return err
			}
			if err := refuseUnexpandedTilde(ctx); err != nil {
				return err
			}
			if before != nil {
				return before(ctx)
			}
			return nil
		}
		withEmptyCheck(c.Subcommands)
	}
}
