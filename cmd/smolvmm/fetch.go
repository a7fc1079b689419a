package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/smolvmm/smolvmm/fetch"
)

// releaseFlags select a NetBSD release, a mirror and the cache; fetch and
// up share them.
func releaseFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "version", Value: fetch.DefaultVersion, Usage: "NetBSD release `VERSION`"},
		&cli.StringFlag{Name: "arch", Value: fetch.DefaultArch, Usage: "NetBSD port (`ARCH`)"},
		&cli.StringFlag{Name: "mirror", Value: fetch.DefaultMirror, Usage: "`URL` of the directory holding NetBSD-<version>/ release trees"},
		&cli.StringFlag{Name: "cache", Usage: "cache `DIR` (default $XDG_CACHE_HOME/smolvmm or ~/.cache/smolvmm)"},
	}
}

func fetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "fetch",
		Usage:     "download and verify a NetBSD release's kernel and sets into the cache",
		ArgsUsage: "[SET...]",
		Description: `Downloads binary/kernel/netbsd-GENERIC.gz and the named sets (default:
rescue) of a NetBSD release, checks each against the release's SHA512
files, and keeps them in the cache, so that later runs need no network.
Prints one line per file: what was done, its size, the time it took and
its path in the cache.

Examples:
   smolvmm fetch                       # 9.3 i386 kernel and rescue set
   smolvmm fetch --version 10.1 rescue base
   smolvmm fetch --mirror http://mirror.example/pub/NetBSD

Proxies come from HTTPS_PROXY, HTTP_PROXY and NO_PROXY.`,
		Flags: releaseFlags(),
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, -1, ""); err != nil {
				return err
			}
			f := newFetcher(c, os.Stderr)
			if err := f.Check(c.String("version"), c.String("arch"), c.Args().Slice()...); err != nil {
				return usageErrorf("%v", err)
			}
			if err := checkCacheDir(c); err != nil { // filemsgs.go
				return err
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			rel, err := f.Fetch(ctx, c.String("version"), c.String("arch"), c.Args().Slice()...)
			if err != nil {
				return interrupted(ctx, err)
			}
			printRelease(c.App.Writer, rel)
			return nil
		},
	}
}

// stopSignals are the signals every command stops on cleanly, status 130
// with its temporary files removed: SIGINT, SIGTERM and SIGHUP (the
// terminal closed), which would otherwise kill it where it stands and
// leave a half-written image's temporary file behind. SIGHUP only when it
// was not ignored at exec: nohup's promise holds (signal.Notify would undo
// it).
var stopSignals = func() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}()

// signalContext is ctx, cancelled by stopSignals: fetch and up's
// preparation stop cleanly on them (a partial download is kept to resume),
// even when SIGINT was inherited as ignored (a background job).
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return notifySignals(ctx, stopSignals...)
}

// signalCause is the cause (context.Cause) of a context a signal ended.
type signalCause struct{ sig os.Signal }

func (s signalCause) Error() string { return signalName(s.sig) + " received" }

// signalName is "SIGTERM" for syscall.SIGTERM.
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return name
		}
	}
	return sig.String()
}

// notifySignals is signal.NotifyContext with the signal as the context's
// cause (a signalCause), so that the message can name it: the standard
// one's cause is text ("terminated signal received"). stop releases the
// signals and waits for the goroutine that watches them.
func notifySignals(parent context.Context, sigs ...os.Signal) (ctx context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-ch:
			cancel(signalCause{s})
		case <-ctx.Done():
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			cancel(nil)
			<-done
		})
	}
}

// interrupted turns err into exit status 130, as run's, when ctx has
// ended. When a signal ended it (notifySignals), the line names the
// signal and, for a download, says that its partial file is kept: err's
// own text (a transfer cut short, a build stopped) only retells the
// signal. Otherwise err is kept: "interrupted: err".
func interrupted(ctx context.Context, err error) error {
	// A signal after the work succeeded does not turn success into 130.
	if err == nil || ctx.Err() == nil || exitCode(err) == 130 {
		return err
	}
	var sc signalCause
	if !errors.As(context.Cause(ctx), &sc) {
		return cli.Exit(fmt.Sprintf("interrupted: %v", err), 130)
	}
	msg := "interrupted by " + signalName(sc.sig)
	var partial *fetch.InterruptedError
	if errors.As(err, &partial) {
		msg += "; the partial download is kept and resumed next time"
	}
	return cli.Exit(msg, 130)
}

// newFetcher configures a Fetcher from the release flags, with a progress
// bar on progressTo when it is a terminal and its notes (a corrupt cached
// file removed) on stderr.
func newFetcher(c *cli.Context, progressTo *os.File) *fetch.Fetcher {
	f := &fetch.Fetcher{Mirror: c.String("mirror"), Cache: c.String("cache")}
	f.LockWait = func(holder string) {
		if holder == "" {
			holder = "another process"
		}
		fmt.Fprintf(os.Stderr, "smolvmm %s: waiting for %s, which holds this release's cache lock\n", c.Command.Name, holder)
	}
	f.Note = func(msg string) {
		fmt.Fprintf(c.App.ErrWriter, "smolvmm %s: %s\n", c.Command.Name, msg)
	}
	if progressTo != nil && term.IsTerminal(int(progressTo.Fd())) {
		f.Progress = terminalProgress(progressTo)
	}
	return f
}

// terminalProgress draws one progress bar per download on w; a resumed
// download's bar starts at the bytes kept from before.
func terminalProgress(w io.Writer) func(name string, total, have int64) io.WriteCloser {
	return func(name string, total, have int64) io.WriteCloser {
		return newProgressBar(w, name, total, have)
	}
}

// printRelease writes one line per file of rel.
func printRelease(w io.Writer, rel *fetch.Release) {
	for _, f := range append([]fetch.File{rel.Kernel}, rel.Sets...) {
		fmt.Fprintln(w, describeFile(f))
	}
}

// describeFile says what happened to one file, e.g.
// "rescue.tgz: downloaded, 3.1 MiB in 1.2s, SHA512 ok: /path".
func describeFile(f fetch.File) string {
	what, size := string(f.Action), humanBytes(f.Size)
	switch {
	case f.Action == fetch.Resumed:
		// The whole file, then how much of it came now.
		size += fmt.Sprintf(" (%s received now, %s kept from an earlier download)",
			humanBytes(f.Size-f.Kept), humanBytes(f.Kept))
	case f.Repaired:
		what = "re-downloaded (the cached copy was corrupt)"
	}
	// Transfers cut and continued in this run: no resume of an earlier
	// download, which only Resumed is.
	breaks := "a break"
	if f.Breaks > 1 {
		breaks = fmt.Sprintf("%d breaks", f.Breaks)
	}
	switch {
	case f.Restarted && f.Breaks == 0:
		what += " (started over: the mirror cannot resume the earlier partial download)"
	case f.Restarted:
		// The mirror sent the whole file again: nothing was resumed.
		what += " (restarted after " + breaks + ": the mirror cannot resume)"
	case f.Breaks == 0:
	case f.Action == fetch.Resumed:
		what += " (and again after " + breaks + " in this run)"
	default:
		what += " (resumed after " + breaks + ")"
	}
	return fmt.Sprintf("%s: %s, %s in %s, SHA512 ok: %s", f.Name, what, size, roundDuration(f.Duration), f.Path)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// elsewhereAdvice is the --mirror to try for a release the mirror's
// listing shows in another directory (fetch.ElsewhereError).
func elsewhereAdvice(err error) string {
	var e *fetch.ElsewhereError
	errors.As(err, &e)
	return "try --mirror " + e.Mirror
}

// notFoundHere reports whether err is a 404 of the mirror with no other
// directory of it to try (those get elsewhereAdvice).
func notFoundHere(err error) bool {
	return errors.Is(err, fetch.ErrNotFound) && !isAs[*fetch.ElsewhereError](err)
}
