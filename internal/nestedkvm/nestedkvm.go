// Package nestedkvm runs tests on a real KVM where the host has none that
// can run them: it boots Debian's Linux kernel under QEMU's software CPU
// (qemu-system-x86_64 -accel tcg -cpu max emulates AMD SVM with nested
// paging), loads the kvm modules there, and runs a statically built
// smolvmm on that /dev/kvm, which runs paged 32-bit guests, iret into
// protected mode and long mode. The development and CI machines' own KVM
// is nested and emulating: a guest that turns on 32-bit paging or
// switches itself to long mode triple-faults there (docs/testing.md, "Tests on a
// real KVM: the nested-KVM rig").
//
// A test describes a Job: files to put in the guest and a shell script
// (busybox sh, smolvmm at /bin/smolvmm). Step frames each command so that
// one boot (Linux takes some 2 s to reach /init under emulation) can run
// several smolvmm invocations and the test can still tell their outputs
// and exit statuses apart:
//
//	kernel := guests.ForTest(t, "paging")
//	r := nestedkvm.Run(t, nestedkvm.Job{
//		Files: []nestedkvm.File{{Path: "/root/paging.elf", Source: kernel}},
//		Script: nestedkvm.Step("4k", "smolvmm", "run", "--net", "none", "-k", "paging.elf") +
//			nestedkvm.Step("pae", "smolvmm", "run", "--net", "none", "-k", "paging.elf", "-a", "pae"),
//	})
//	s := r.Step(t, "pae") // s.Stdout, s.Stderr, s.Status, s.Elapsed
//
// A step's stdin is /dev/null, so smolvmm sees no terminal and passes the
// serial line through untouched; to type at a guest, pipe into smolvmm
// inside the step: Step("prompt", "sh", "-c", "printf '?\n' | smolvmm run ...").
// The Linux kernel logs only warnings and worse (quiet), but such a
// message would land in the running step's stdout.
//
// The Linux kernel and busybox come from Debian's packages (apt-get
// download, cached in CacheDir by version). Run skips the test, with the
// reason, where QEMU or the packages cannot be had, unless
// SMOLVMM_NESTEDKVM=require (CI), which turns the skip into a failure;
// SMOLVMM_NESTEDKVM=off and go test -short skip every rig test.
package nestedkvm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// QEMU is the emulator the rig boots Linux in.
const QEMU = "qemu-system-x86_64"

// EnvVar selects how the rig treats a machine that lacks its ingredients:
// "" skips those tests, "require" fails them, "off" skips every rig test.
const EnvVar = "SMOLVMM_NESTEDKVM"

// DefaultTimeout bounds one attempt of a job that sets no Timeout.
const DefaultTimeout = 2 * time.Minute

// Job is what one boot of the rig runs.
type Job struct {
	// Files are put in the guest's root file system, over the rig's own.
	Files []File
	// Script is run by busybox sh in /root after /dev/kvm is up, with
	// PATH=/bin (smolvmm is /bin/smolvmm) and the step function defined.
	// Its exit status is Result.Status.
	Script string
	// Timeout bounds each attempt, from QEMU's start to its end (default
	// DefaultTimeout). An attempt that runs out is retried once: the rig
	// stalls now and then for no reason found (about one run in ten,
	// measured here; the same run then passes).
	Timeout time.Duration
	// Log, if set, receives the serial output as it comes, instead of the
	// test log (which gets one line per guest line).
	Log io.Writer
}

// Result is what a finished job printed and returned.
type Result struct {
	// Output is everything the guest wrote to its serial line, the Linux
	// kernel's messages included.
	Output string
	// Status is the exit status of the job's script.
	Status int
	// Guest uptimes (emulated time since Linux started) when /init started,
	// when /dev/kvm was ready and when the script ended: for ratios between
	// runs of the rig only, never as absolute times.
	Init, KVMReady, End time.Duration
	// Wall is the host time the successful attempt took, QEMU start to
	// end; InitWall is the part of it until /init started.
	Wall, InitWall time.Duration
	// Attempts is 1, or 2 when the first attempt stalled.
	Attempts int
}

// StepResult is one command run by the step shell function.
type StepResult struct {
	Name   string // the step's name, as Step was given it
	Stdout string // as the command wrote it (the guest's own "\r\n" kept)
	Stderr string // likewise
	Status int    // the command's exit status
	// Elapsed is the step's guest uptime difference (10 ms resolution):
	// for ratios between steps, never as an absolute time.
	Elapsed time.Duration
}

// Step returns a script line that runs argv (as by "$@": no shell
// expansion) as the step named name; Result.Step finds its output.
func Step(name string, argv ...string) string {
	q := []string{"step", shellQuote(strings.ReplaceAll(name, "\n", " "))}
	for _, a := range argv {
		q = append(q, shellQuote(a))
	}
	return strings.Join(q, " ") + "\n"
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Steps parses every step in the output, in the order they ran.
func (r Result) Steps() ([]StepResult, error) { return parseSteps(r.Output) }

// Step returns the step named name, failing t when it did not run or did
// not finish.
func (r Result) Step(t testing.TB, name string) StepResult {
	t.Helper()
	steps, err := r.Steps()
	if err != nil {
		t.Fatalf("nested KVM output: %v\noutput:\n%s", err, r.Output)
	}
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("nested KVM: no step %q in the output:\n%s", name, r.Output)
	return StepResult{}
}

var (
	endRE    = regexp.MustCompile(`^status=(\d+) start=([0-9.]+) end=([0-9.]+) name=(.*)$`)
	uptimeRE = regexp.MustCompile(`uptime=([0-9.]+)`)
)

// parseSteps reads the frames the step function prints (see
// stepFunctions).
func parseSteps(out string) ([]StepResult, error) {
	var steps []StepResult
	for rest := out; ; {
		i := strings.Index(rest, marker+"begin name=")
		if i < 0 {
			return steps, nil
		}
		rest = rest[i+len(marker+"begin name="):]
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 {
			return steps, fmt.Errorf("step begin marker without a newline")
		}
		s := StepResult{Name: strings.TrimSuffix(rest[:nl], "\r")}
		rest = rest[nl+1:]
		end := strings.Index(rest, "\n"+marker+"end ")
		if end < 0 {
			return steps, fmt.Errorf("step %q did not finish", s.Name)
		}
		s.Stdout = rest[:end]
		rest = rest[end+len("\n"+marker+"end "):]
		nl = strings.IndexByte(rest, '\n')
		if nl < 0 {
			return steps, fmt.Errorf("step %q: end marker without a newline", s.Name)
		}
		m := endRE.FindStringSubmatch(strings.TrimSuffix(rest[:nl], "\r"))
		if m == nil || m[4] != s.Name {
			return steps, fmt.Errorf("step %q: malformed end marker %q", s.Name, rest[:nl])
		}
		s.Status, _ = strconv.Atoi(m[1])
		s.Elapsed = uptime(m[3]) - uptime(m[2])
		rest = rest[nl+1:]
		se := strings.Index(rest, "\n"+marker+"stderr-end name="+s.Name+"\n")
		if se < 0 {
			return steps, fmt.Errorf("step %q: no end of its stderr", s.Name)
		}
		s.Stderr = rest[:se]
		rest = rest[se+1:]
		steps = append(steps, s)
	}
}

// uptime parses /proc/uptime's seconds.
func uptime(s string) time.Duration {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return time.Duration(math.Round(f*100)) * 10 * time.Millisecond
}

// Run boots the rig with job and returns what it printed. It skips t (see
// EnvVar) when QEMU or the Debian packages are missing, and fails t when
// the rig itself fails: no /dev/kvm in the guest, or no end after two
// attempts. A script's failure is the caller's to judge, from Status and
// the steps' statuses.
func Run(t testing.TB, job Job) Result {
	t.Helper()
	SkipIfOff(t)
	qemu, err := exec.LookPath(QEMU)
	if err != nil {
		unavailable(t, unavailablef("%s not found (Debian: apt-get install qemu-system-x86)", QEMU))
	}
	b, err := base()
	if errors.Is(err, ErrUnavailable) {
		unavailable(t, err)
	}
	if err != nil {
		t.Fatalf("nested KVM rig: %v", err)
	}
	if b.ing.Fallback != "" {
		t.Logf("nested KVM rig: %s", b.ing.Fallback)
	}
	jobCPIO, err := jobArchive(job.Files, job.Script)
	if err != nil {
		t.Fatalf("nested KVM rig: %v", err)
	}
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := os.WriteFile(initrd, append(append([]byte(nil), b.archive...), jobCPIO...), 0o644); err != nil {
		t.Fatal(err)
	}
	timeout := job.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	log := job.Log
	if log == nil {
		log = &lineLogger{t: t}
	}
	r, err := runAttempts(qemu, b.ing.Kernel, initrd, timeout, log, t.Logf)
	if err != nil {
		t.Fatalf("nested KVM rig (%s): %v\noutput:\n%s", b.ing.Packages, err, r.Output)
	}
	return r
}

// unavailable skips t, or fails it under SMOLVMM_NESTEDKVM=require.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(EnvVar) == "require" {
		t.Fatalf("nested KVM rig: %v (%s=require)", err, EnvVar)
	}
	t.Skipf("nested KVM rig: %v", err)
}

// Fetch returns the rig's ingredients from the package cache (downloading
// them the first time), skipping t as Run does where they cannot be had.
func Fetch(t testing.TB) Ingredients {
	t.Helper()
	SkipIfOff(t)
	ing, err := FetchIngredients(CacheDir())
	if errors.Is(err, ErrUnavailable) {
		unavailable(t, err)
	}
	if err != nil {
		t.Fatalf("nested KVM rig: %v", err)
	}
	if ing.Fallback != "" {
		t.Logf("nested KVM rig: %s", ing.Fallback)
	}
	return ing
}

// SkipIfOff skips t when the rig is off: under SMOLVMM_NESTEDKVM=off or in -short mode
// (each run boots Linux under emulation, and its packages are downloaded
// the first time). Run and Fetch call it first; a test that prepares its
// files before calling Run calls it before that, so that finding them
// cannot fail or skip it for another reason.
func SkipIfOff(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvVar) == "off" {
		t.Skipf("nested KVM rig disabled (%s=off)", EnvVar)
	}
	if testing.Short() {
		t.Skip("nested KVM rig skipped in -short mode (each run boots Linux under emulation)")
	}
}

// rigBase is what every run in a test process shares.
type rigBase struct {
	ing     Ingredients
	archive []byte
}

var (
	baseOnce sync.Once
	baseRig  rigBase
	baseErr  error
)

// base fetches the packages and builds smolvmm and the base archive, once
// per test process.
func base() (rigBase, error) {
	baseOnce.Do(func() {
		ing, err := FetchIngredients(CacheDir())
		if err != nil {
			baseErr = err
			return
		}
		bin, err := BuildSmolvmm()
		if err != nil {
			baseErr = err
			return
		}
		archive, err := baseArchive(ing, bin)
		baseRig, baseErr = rigBase{ing: ing, archive: archive}, err
	})
	return baseRig, baseErr
}

// BuildSmolvmm builds a static smolvmm from the module the current
// directory is in (a test's package directory), as `make build` does, and
// returns the binary's bytes.
func BuildSmolvmm() ([]byte, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // the toolchain that built the test

	}
	dir, err := os.MkdirTemp("", "nestedkvm-smolvmm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "smolvmm")
	cmd := exec.Command(goTool, "build", "-tags", "urfave_cli_no_docs", "-o", out, "github.com/smolvmm/smolvmm/cmd/smolvmm")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building a static smolvmm: %v\n%s", err, msg)
	}
	return os.ReadFile(out)
}

var errStalled = errors.New("stalled")

// runAttempts boots once, and once more if the first attempt stalled.
func runAttempts(qemu, kernel, initrd string, timeout time.Duration, log io.Writer, logf func(string, ...any)) (Result, error) {
	var r Result
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		r, err = boot(qemu, kernel, initrd, timeout, log)
		r.Attempts = attempt
		if ll, ok := log.(*lineLogger); ok {
			ll.flush()
		}
		if !errors.Is(err, errStalled) {
			break
		}
		if attempt == 1 {
			logf("nested KVM rig: attempt 1 %v, after printing %d bytes; retrying once", err, len(r.Output))
		}
	}
	return r, err
}

// boot runs QEMU once, copying its serial output to log as it comes.
func boot(qemu, kernel, initrd string, timeout time.Duration, log io.Writer) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "1",
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", qemu, err)
	}
	var out bytes.Buffer
	initSeen := &initWatch{out: &out, start: start}
	_, _ = io.Copy(io.MultiWriter(&out, initSeen, log), pipe)
	waitErr := cmd.Wait()
	r := Result{Output: out.String(), Wall: time.Since(start), InitWall: initSeen.at}
	if ctx.Err() != nil {
		return r, fmt.Errorf("%w: no end after %v", errStalled, timeout)
	}
	if waitErr != nil {
		return r, fmt.Errorf("%s: %v: %s", qemu, waitErr, bytes.TrimSpace(stderr.Bytes()))
	}
	return r, r.parse()
}

// parse fills the status and times from the rig's markers.
func (r *Result) parse() error {
	sc := bufio.NewScanner(strings.NewReader(r.Output))
	sc.Buffer(nil, 1<<20)
	exited := false
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		rest, ok := strings.CutPrefix(line, marker)
		if !ok {
			continue
		}
		var t time.Duration
		if m := uptimeRE.FindStringSubmatch(rest); m != nil {
			t = uptime(m[1])
		}
		switch verb, args, _ := strings.Cut(rest, " "); verb {
		case "error":
			return fmt.Errorf("guest: %s", args)
		case "init":
			r.Init = t
		case "kvm":
			r.KVMReady = t
		case "exit":
			f := strings.Fields(args)
			if len(f) == 0 {
				return fmt.Errorf("malformed exit marker %q", line)
			}
			st, err := strconv.Atoi(strings.TrimPrefix(f[0], "status="))
			if err != nil {
				return fmt.Errorf("malformed exit marker %q", line)
			}
			r.Status, r.End, exited = st, t, true
		}
	}
	switch {
	case r.Init == 0:
		return errors.New("Linux never started /init (kernel panic? see the output)")
	case !exited:
		return errors.New("the guest stopped before the script ended")
	}
	return nil
}

// initWatch notes the time /init's first marker arrives, looking at the
// output written so far (it runs after out in a MultiWriter).
type initWatch struct {
	out   *bytes.Buffer
	start time.Time
	at    time.Duration
}

func (w *initWatch) Write(p []byte) (int, error) {
	if w.at == 0 && bytes.Contains(w.out.Bytes(), []byte("\n"+marker+"init ")) {
		w.at = time.Since(w.start)
	}
	return len(p), nil
}

// lineLogger passes the serial output to the test log a line at a time.
type lineLogger struct {
	t       testing.TB
	partial []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Log("guest: " + strings.TrimRight(string(l.partial[:i]), "\r"))
		l.partial = l.partial[i+1:]
	}
}

func (l *lineLogger) flush() {
	if len(l.partial) > 0 {
		l.t.Log("guest: " + strings.TrimRight(string(l.partial), "\r"))
		l.partial = nil
	}
}
