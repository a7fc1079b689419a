package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/sandbox"
)

// TestMain removes the binary smolvmmBin built (24 MiB in the temporary
// directory, once per run), and asUnprivileged's copy of it, after the
// tests. Started with takeFDEnv, the
// test binary is takeFD's helper instead.
func TestMain(m *testing.M) {
	if v := os.Getenv(takeFDEnv); v != "" {
		os.Exit(takeFDMain(v))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if openBin != "" {
		os.RemoveAll(filepath.Dir(openBin))
	}
	os.Exit(code)
}

// takeFDEnv makes the test binary takeFD's helper: "UID:GID:PID:FD".
const takeFDEnv = "SMOLVMM_TEST_TAKE_FD"

// takeFDMain drops to UID and GID (it is started as root: the test
// binary's directory is root's alone), then takes descriptor FD of
// process PID (pidfd_open, then pidfd_getfd) and prints the errno (0
// when it got the descriptor).
func takeFDMain(v string) int {
	var n [4]int
	parts := strings.Split(v, ":")
	for i := range n {
		var err error
		if len(parts) != len(n) {
			err = errors.New("fields")
		} else {
			n[i], err = strconv.Atoi(parts[i])
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s=%q: want UID:GID:PID:FD\n", takeFDEnv, v)
			return 2
		}
	}
	if err := sandbox.DropPrivileges(sandbox.Credentials{UID: n[0], GID: n[1]}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pidfd, err := unix.PidfdOpen(n[2], 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pidfd_open(%d): %v\n", n[2], err)
		return 1
	}
	_, err = unix.PidfdGetfd(pidfd, n[3], 0)
	var errno syscall.Errno
	if err != nil && !errors.As(err, &errno) {
		fmt.Fprintf(os.Stderr, "pidfd_getfd: %v\n", err)
		return 1
	}
	fmt.Println(int(errno))
	return 0
}
