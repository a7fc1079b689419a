package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// ErrGone is matched (errors.Is) by the errors of reading a process's
// memory once the process has exited: reaped (its /proc directory is
// gone), a zombie (its smaps is empty), or gone before a signal reached
// it (ESRCH).
var ErrGone = errors.New("the process has exited")

// gone adds ErrGone to err when err says that the process is gone: ENOENT
// on its /proc files, or ESRCH.
func gone(err error) error {
	if err != nil && !errors.Is(err, ErrGone) && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)) {
		return fmt.Errorf("%w: %w", err, ErrGone)
	}
	return err
}

// openProc opens /proc/PID/name. Refused a file the kernel gave to root
// while the process runs as another user, the error says why: the
// process is not dumpable, and a bare "permission denied" read as a
// mistake of the bench's. A process gone is ErrGone.
func openProc(pid int, name string) (*os.File, error) {
	path := fmt.Sprintf("/proc/%d/%s", pid, name)
	f, err := os.Open(path)
	if err != nil && errors.Is(err, fs.ErrPermission) {
		if why := notDumpable(pid, path); why != "" {
			return nil, fmt.Errorf("%w: %s", err, why)
		}
	}
	return f, gone(err)
}

// notDumpable says why path of process pid is root's while the process
// runs as another user, or returns "" when it is not so (or cannot be
// told: the process may have exited).
func notDumpable(pid int, path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Uid != 0 {
		return ""
	}
	// status stays readable by anyone, whoever owns the other files.
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ids, ok := strings.CutPrefix(sc.Text(), "Uid:")
		if !ok {
			continue
		}
		fields := strings.Fields(ids)
		if len(fields) == 0 || fields[0] == "0" {
			return ""
		}
		return fmt.Sprintf("process %d runs as uid %s but is not dumpable, so the kernel gives its /proc files to root: its memory can be read only with CAP_SYS_PTRACE, as root (the VMM makes itself so when it was started with effective or permitted capabilities, ambient ones among them)", pid, fields[0])
	}
	return ""
}
