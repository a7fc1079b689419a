package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ChildReport is what a Target with a ReportFlag writes to the file (or
// named pipe) named after that flag before it exits: its own phases on
// CLOCK_MONOTONIC.
type ChildReport struct {
	// Phases maps a phase name (PhaseRuntime, PhaseVMCreated, ...) to
	// CLOCK_MONOTONIC nanoseconds (see MonoNow and MonoOf).
	Phases map[string]int64 `json:"phases_mono_ns"`
	// GuestStatus is the exit status the guest chose by ending the run
	// itself: (v<<1)|1 for a write of v to the debug-exit port, 0 for a
	// halt, reset or power-off. Nil when the run ended otherwise (a stop,
	// an error of the VMM): the bench then takes no nonzero status as a
	// good end, since the VMM's own failures have odd statuses too (1
	// for most errors, 128+n for a signal under a jail).
	GuestStatus *int `json:"guest_status,omitempty"`
}

// WriteChildReport writes r to path as JSON.
func WriteChildReport(path string, r ChildReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("bench report: %w", err)
	}
	return nil
}

func readChildReport(path string) (ChildReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ChildReport{}, fmt.Errorf("bench report: %w", err)
	}
	return parseChildReport(path, b)
}

// parseChildReport parses b, the report a program wrote to path.
func parseChildReport(path string, b []byte) (ChildReport, error) {
	var r ChildReport
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("bench report %s: %w", path, err)
	}
	for name := range r.Phases {
		if !knownPhase(name) {
			return r, fmt.Errorf("bench report %s: unknown phase %q", path, name)
		}
	}
	return r, nil
}

// reportPipe is a named pipe that a program writes its ChildReport to as
// to a file: its bytes wait in the pipe's buffer, which takes no room in
// the file system it is named in (a full TMPDIR cannot lose the report of
// a boot that went well), and the name reaches a jailed program, whose
// mount namespace is a copy of the bench's, where an inherited
// descriptor would not.
type reportPipe struct {
	path string
	fd   int // the bench's end, opened read-write: see openReportPipe
}

// maxChildReport bounds what read takes of a pipe: a ChildReport is
// well under a kilobyte, which any pipe's buffer holds (a page at least:
// what Linux gives a user over fs.pipe-user-pages-soft), so that the
// program writes it whole without the bench reading meanwhile.
const maxChildReport = 1 << 20

// openReportPipe makes the named pipe path and opens the bench's end.
// Opened read-write, it is a reader for as long as the bench holds it (a
// program's write-only open of the path does not wait, its writes do not
// fail with EPIPE) and a writer (reading it never sees the end of file);
// non-blocking, read returns once the pipe is empty.
func openReportPipe(path string) (*reportPipe, error) {
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return nil, fmt.Errorf("bench report %s: make named pipe: %w", path, err)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("bench report %s: open: %w", path, err)
	}
	return &reportPipe{path: path, fd: fd}, nil
}

// read parses what the program wrote; called once it has exited, when
// all of it is in the pipe.
func (p *reportPipe) read() (ChildReport, error) {
	var b []byte
	buf := make([]byte, 4096)
	for len(b) < maxChildReport {
		n, err := unix.Read(p.fd, buf)
		if errors.Is(err, unix.EAGAIN) || err == nil && n == 0 {
			break // empty (the bench's end keeps it from ending)
		}
		if err != nil {
			return ChildReport{}, fmt.Errorf("bench report %s: read: %w", p.path, err)
		}
		b = append(b, buf[:n]...)
	}
	return parseChildReport(p.path, b)
}

// close closes the bench's end; the caller removes the pipe's directory.
func (p *reportPipe) close() { unix.Close(p.fd) }
