// Command smolvmm runs NetBSD microVMs on KVM and builds what they boot.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/sandbox"
)

func commands() []*cli.Command {
	return []*cli.Command{
		// Each subcommand lives in its own file; add yours here.
		fetchCommand(),
		upCommand(),
		runCommand(),
		demoCommand(),
		benchCommand(),
		kstripCommand(),
		mkimgCommand(),
		netCommand(),
		versionCommand(), // version.go
	}
}

func main() {
	maybeBrokerMain()       // broker.go: a VMM's broker ends here
	nameJailed()            // contain.go: the jailed VMM was named exe
	closeInherited(os.Args) // inherit.go: before anything of ours is open
	if err := startPoller(); err != nil && !opensNothing(os.Args) {
		fmt.Fprintln(os.Stderr, errorLine(commandName(os.Args), err.Error()))
		os.Exit(1)
	}
	// PID 1 of a PID namespace (a container's entrypoint, or --jail's
	// VMM) ends with 141 on a broken standard output as any process
	// does, not Go's silent 2; a console with the terminal raw puts it
	// back first (console.go: watch).
	sandbox.HandleSignalsAsPID1(terminalRaw.Load)
	prepareRestoreEarly(os.Args) // snapshot.go: before the flags are parsed
	os.Exit(run(os.Args))
}

// startPoller has the Go runtime make its poller's two descriptors
// (epoll and eventfd) now: it makes them at the first os.Open or pipe, and dies
// ("fatal error: runtime: eventfd failed") when they do not fit, where
// smolvmm's own open that finds no room fails with an error it
// advises. Many of smolvmm's first opens are raw (/dev/kvm, --snapshot's
// temporaries), which leave the table full by the time one is an
// os.Open. The runtime keeps the two open (close-on-exec) until exit.
// Below the limit a command needs, it fails at an open of its own, with
// that error (Go has raised the soft limit to the hard one already: only
// a privileged user or the parent can raise it further).
func startPoller() error {
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	// Room for the open below and the poller's two, made raw so that
	// none of them can be the runtime's: the open would take a number
	// and leave none for the poller, and the runtime dies.
	var held []int
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	for range 3 {
		fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("no room for 3 descriptors at start (the limit of open files, RLIMIT_NOFILE, is %d, with %d open): %w (raise it: ulimit -n, or LimitNOFILE= in a systemd unit; or close what the caller leaves open)", lim.Cur, len(openFDs()), err)
		}
		held = append(held, fd)
	}
	for _, fd := range held {
		unix.Close(fd)
	}
	held = nil
	f, err := os.Open("/")
	if err != nil {
		return fmt.Errorf("the first open: %w", err)
	}
	return f.Close()
}

// opensNothing reports whether args ask only for help or the version,
// which open no file of smolvmm's: they need no room for the poller.
func opensNothing(args []string) bool {
	name := commandName(args)
	return name == "" || name == "version" || slices.ContainsFunc(args[min(1, len(args)):], func(a string) bool {
		return a == "help" || a == "-h" || a == "--help"
	})
}

// run is main without the exit, so that deferred cleanups (the terminal
// mode above all) always run first.
func run(args []string) int {
	app := newApp(commands())
	app.Writer = stdout // stdout.go: keeps the first write error
	if err := checkAppHelpArgs(app, args); err != nil {
		fmt.Fprintln(os.Stderr, errorLine("", advise(err)))
		return exitCode(err)
	}
	// Errors are printed once, below, as one line.
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(args)
	if f := brokenOut.File(); f != nil {
		// A write lost its reader, and the process lives: as PID 1 of
		// a PID namespace, whose handler may not have run yet
		// (HandleSignalsAsPID1). Status 141, as the handler ends it.
		brokenPipe(f) // console.go
	}
	command := commandName(args)
	if jailedFor != "" {
		command = jailedFor // jail.go: up's VM, jailed, is run's
	}
	// Output lost is said whatever else happened: a guest that ended
	// with a status of its own keeps it, and still lost its output.
	lost := stdout.Err()
	if lost != nil && (err == nil || exitCode(err) == 0 || errors.Is(err, lost)) {
		// The command did its work but its output was lost, or it
		// failed on that very write: one line, with the advice.
		err, lost = stdoutError(lost), nil
	}
	if lost != nil {
		defer fmt.Fprintln(os.Stderr, errorLine(command, advise(stdoutError(lost))))
	}
	if err == nil {
		err = helpTopicError(app)
	}
	if err == nil {
		return 0
	}
	// A flag before the command is smolvmm's own, whatever command
	// follows: said as such, not as the command's.
	var g *globalFlagError
	if errors.As(err, &g) {
		err, command = g.after(commandAfterFlags(args)), ""
	}
	// advise adds the flags to change to the libraries' errors.
	if msg := advise(err); msg != "" {
		fmt.Fprintln(os.Stderr, errorText(command, msg, err))
	}
	return exitCode(err)
}

// newApp is the CLI with cmds and the settings every command relies on;
// tests build theirs with it too.
func newApp(cmds []*cli.Command) *cli.App {
	app := &cli.App{
		Name:     "smolvmm",
		Usage:    "a Go microVM monitor for NetBSD",
		Commands: cmds,
		// Our own --version, without urfave/cli's -v alias (every
		// command's -v is --verbose): appAction prints it.
		Flags:                []cli.Flag{&cli.BoolFlag{Name: "version", Usage: "print smolvmm's version, the commit it was built from and the Go version"}},
		Before:               checkAppArgs,
		CommandNotFound:      helpTopicNotFound,
		Metadata:             map[string]any{},
		EnableBashCompletion: true,
		OnUsageError:         usageError,
		Action:               appAction,
		// Repeatable flags carry commas of their own (-d img,ro,serial=X;
		// --module file,args): one flag is one value. Commands that take
		// comma lists (kstrip --keep a,b) split them themselves.
		DisableSliceFlagSeparator: true,
	}
	withNames(app.Commands)      // flagnames.go: Names without urfave/cli's regexp
	withEmptyCheck(app.Commands) // emptyflags.go: -o "" is a mistake, not -o left out
	for _, c := range app.Commands {
		if c.OnUsageError == nil {
			c.OnUsageError = usageError
		}
		before := c.Before
		c.Before = func(ctx *cli.Context) error {
			if err := checkHelpTopic(ctx); err != nil {
				return err
			}
			if before != nil {
				return before(ctx)
			}
			return nil
		}
	}
	return app
}

// usageError turns a flag parsing error into one line that says where help is.
func usageError(c *cli.Context, err error, _ bool) error {
	if msg, ok := upRunOnlyFlag(c, err.Error()); ok { // up.go
		return cli.Exit(msg, 2)
	}
	if c.Command == nil || c.Command.Name == "" || c.Command.Name == c.App.Name {
		return &globalFlagError{msg: flagParseMessage(c, err.Error()), unknown: strings.HasPrefix(err.Error(), "flag provided but not defined: ")}
	}
	return cli.Exit(fmt.Sprintf("%s (see %s --help)", flagParseMessage(c, err.Error()), commandPath(c)), 2)
}

// globalFlagError is a mistake in the flags before the command, which
// are smolvmm's own (--help, --version): `smolvmm -x run` is not run's
// -x. The command, if one follows, is known only from the arguments
// (after).
type globalFlagError struct {
	msg     string
	unknown bool // a flag smolvmm does not have, rather than a bad value
}

// Error is the refusal as said when no command follows the flags.
func (e *globalFlagError) Error() string { return e.msg + " (see smolvmm --help)" }

// ExitCode makes globalFlagError a cli.ExitCoder: a usage error.
func (e *globalFlagError) ExitCode() int { return 2 }

// after is e's refusal when command follows the flags (none: ""): an
// unknown flag there may be meant for the command, which takes it after
// its name.
func (e *globalFlagError) after(command string) error {
	if command == "" || !e.unknown {
		return usageErrorf("%s", e.Error())
	}
	return usageErrorf("%s before the command %s: flags there are smolvmm's own (--help, --version); %s's go after its name (see smolvmm %s --help)", e.msg, command, command, command)
}

// appAction runs when no command matched: help without arguments, else a
// one-line error with status 2, as for every command-line mistake
// (urfave/cli's own answer is "No help topic for ..." with status 3).
func appAction(c *cli.Context) error {
	if c.Bool("version") {
		fmt.Fprintln(c.App.Writer, versionLine()) // version.go
		return nil
	}
	if c.NArg() == 0 {
		return cli.ShowAppHelp(c)
	}
	return usageErrorf("unknown command %q (smolvmm --help lists the commands)", c.Args().First())
}

// checkAppArgs refuses the mistakes before a command: --version with one,
// and help about no command.
func checkAppArgs(c *cli.Context) error {
	if err := checkVersionFlag(c); err != nil {
		return err
	}
	return checkHelpTopic(c)
}

// checkHelpTopic refuses `smolvmm help X` (and `smolvmm CMD help X`) for
// an X that is no command, as `smolvmm X` is refused: urfave/cli's answer
// is "No help topic for 'X'", status 3, which no other mistake has.
func checkHelpTopic(c *cli.Context) error {
	args := c.Args()
	if args.Len() < 2 {
		return nil
	}
	find, see := c.App.Command, "smolvmm --help lists the commands"
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name {
		find, see = c.Command.Command, "see "+commandPath(c)+" --help"
	}
	if h := find(args.First()); h == nil || h.Name != "help" {
		return nil
	}
	if topic := args.Get(1); find(topic) == nil {
		return usageErrorf("help %s: unknown command %q (%s)", topic, topic, see)
	}
	// urfave/cli shows the first topic's help and drops the rest.
	if args.Len() > 2 {
		return usageErrorf("help %s: unexpected argument %q: help takes one command (%s)", strings.Join(args.Slice()[1:], " "), args.Get(2), see)
	}
	return nil
}

// checkAppHelpArgs refuses smolvmm's own -h or --help followed by a
// command and more (`smolvmm --help run extra`), as help with them is
// refused: urfave/cli shows the command's help with status 0 and drops
// the rest, before any Before could see them, so args are read here with
// the app's own flags first. An unknown command, or flags it cannot
// parse, are left to urfave/cli and helpTopicNotFound.
func checkAppHelpArgs(app *cli.App, args []string) error {
	if len(args) < 3 || cli.HelpFlag == nil || args[len(args)-1] == "--generate-bash-completion" {
		return nil
	}
	set := flag.NewFlagSet(app.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range append(slices.Clone(app.Flags), cli.HelpFlag) {
		if err := f.Apply(set); err != nil {
			return nil
		}
	}
	if set.Parse(args[1:]) != nil || set.NArg() < 2 || app.Command(set.Arg(0)) == nil {
		return nil
	}
	help := false
	for _, name := range cli.HelpFlag.Names() {
		if f := set.Lookup(name); f != nil && f.Value.String() == "true" {
			help = true
		}
	}
	if !help {
		return nil
	}
	return usageErrorf("--help %s: unexpected argument %q: --help takes one command (smolvmm --help lists the commands)", strings.Join(set.Args(), " "), set.Arg(1))
}

// helpTopicKey is where helpTopicNotFound leaves its refusal in the
// app's Metadata, for run to return.
const helpTopicKey = "smolvmm.helpTopic"

// helpTopicNotFound is urfave/cli's CommandNotFound, which it calls for
// `smolvmm CMD --help ARG` (and -h): it takes ARG as a help topic, and
// without this answers "No help topic for 'ARG'" with status 3, which no
// other mistake has. It cannot return an error: it leaves one for run
// (helpTopicError), as a usage error.
func helpTopicNotFound(c *cli.Context, topic string) {
	err := usageErrorf("unknown command %q after --help (smolvmm --help lists the commands)", topic)
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name {
		err = usageErrorf("unexpected argument %q after --help: %s --help takes no argument (it shows %s's help)", topic, commandPath(c), c.Command.Name)
	}
	c.App.Metadata[helpTopicKey] = err
}

// helpTopicError is the refusal helpTopicNotFound left in app, if any.
func helpTopicError(app *cli.App) error {
	err, _ := app.Metadata[helpTopicKey].(error)
	return err
}

// checkVersionFlag refuses --version before a command, which would
// otherwise run the command and drop the flag.
func checkVersionFlag(c *cli.Context) error {
	if c.Bool("version") && c.NArg() > 0 {
		return usageErrorf("--version takes no command or argument (%q): use smolvmm --version or smolvmm version", c.Args().First())
	}
	return nil
}

// usageErrorf is a command-line mistake found after parsing (a flag's
// value, a missing or stray argument): one line, exit status 2.
func usageErrorf(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), 2)
}

// exitCode maps an error to the process exit status: a guest's own exit
// status when the error carries one, 1 otherwise.
func exitCode(err error) int {
	if ec, ok := err.(cli.ExitCoder); ok {
		return ec.ExitCode()
	}
	return 1
}

// usageStatus is a command-line mistake that a library found (a boot
// argument or module type the protocol the kernel chose cannot take):
// exit status 2, with the library's error and advice kept.
type usageStatus struct{ error }

// ExitCode makes usageStatus a cli.ExitCoder.
func (usageStatus) ExitCode() int { return 2 }

// diskSpecError is blk.ParseDiskSpec's refusal of a -d value: status 2,
// wrapped rather than flattened into text, so that advise still finds the
// library's error (an option given twice) and adds what to do.
func diskSpecError(err error) error { return usageStatus{fmt.Errorf("-d: %w", err)} }

func (u usageStatus) Unwrap() error { return u.error }

// crashStatus is a guest's crash: exit status 2, the error kept (its
// registers are printed after its line).
type crashStatus struct{ error }

// ExitCode makes crashStatus a cli.ExitCoder.
func (crashStatus) ExitCode() int { return 2 }

func (c crashStatus) Unwrap() error { return c.error }
