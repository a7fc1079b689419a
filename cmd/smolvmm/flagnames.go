package main

import (
	"flag"

	"github.com/urfave/cli/v2"
)

// urfave/cli finds a flag by name by asking every flag for its Names, each
// call a regular-expression replace per name; after parsing, it asks
// whether each name of each flag is set, and each unset one is such a
// search: ~1,000 replaces and ~110 KB of allocations before run's first
// KVM_RUN. The flags of smolvmm's commands are wrapped so that Names
// returns the names read once from the flag's fields (namesOf); every
// other method, String (the help line) included, is the flag's own.
type (
	namedStringFlag struct {
		*cli.StringFlag
		names      []string
		flagRecord // repeatflags.go
	}
	namedBoolFlag struct {
		*cli.BoolFlag
		names      []string
		flagRecord // repeatflags.go
	}
	namedIntFlag struct {
		*cli.IntFlag
		names      []string
		flagRecord // repeatflags.go
	}
	namedStringSliceFlag struct {
		*cli.StringSliceFlag
		names []string
	}
	namedDurationFlag struct {
		*cli.DurationFlag
		names      []string
		flagRecord // repeatflags.go
	}
)

// Names returns the names read when the flag was wrapped.
func (f *namedStringFlag) Names() []string      { return f.names }
func (f *namedBoolFlag) Names() []string        { return f.names }
func (f *namedIntFlag) Names() []string         { return f.names }
func (f *namedStringSliceFlag) Names() []string { return f.names }
func (f *namedDurationFlag) Names() []string    { return f.names }

// Apply is the flag's own, its values recorded (repeatflags.go).
func (f *namedStringFlag) Apply(set *flag.FlagSet) error {
	err := f.StringFlag.Apply(set)
	f.recordValues(set, f.names, false)
	return err
}

func (f *namedBoolFlag) Apply(set *flag.FlagSet) error {
	err := f.BoolFlag.Apply(set)
	f.recordValues(set, f.names, false)
	return err
}

func (f *namedIntFlag) Apply(set *flag.FlagSet) error {
	err := f.IntFlag.Apply(set)
	f.recordValues(set, f.names, true)
	return err
}

func (f *namedDurationFlag) Apply(set *flag.FlagSet) error {
	err := f.DurationFlag.Apply(set)
	f.recordValues(set, f.names, false)
	return err
}

// withNames wraps the flags of cmds and of their subcommands (once: a
// wrapped flag is left as it is; a type it does not know, too).
func withNames(cmds []*cli.Command) {
	for _, c := range cmds {
		for i, f := range c.Flags {
			c.Flags[i] = withNamesFlag(f)
		}
		withNames(c.Subcommands)
	}
}

func withNamesFlag(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *cli.StringFlag:
		return &namedStringFlag{StringFlag: f, names: namesOf(f)}
	case *cli.BoolFlag:
		return &namedBoolFlag{BoolFlag: f, names: namesOf(f)}
	case *cli.IntFlag:
		return &namedIntFlag{IntFlag: f, names: namesOf(f)}
	case *cli.StringSliceFlag:
		return &namedStringSliceFlag{f, namesOf(f)}
	case *cli.DurationFlag:
		return &namedDurationFlag{DurationFlag: f, names: namesOf(f)}
	}
	return f
}

// unwrapFlag is the urfave/cli flag withNames wrapped in f (f itself if
// not wrapped), for type switches on the flag's kind.
func unwrapFlag(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *namedStringFlag:
		return f.StringFlag
	case *namedBoolFlag:
		return f.BoolFlag
	case *namedIntFlag:
		return f.IntFlag
	case *namedStringSliceFlag:
		return f.StringSliceFlag
	case *namedDurationFlag:
		return f.DurationFlag
	}
	return f
}
