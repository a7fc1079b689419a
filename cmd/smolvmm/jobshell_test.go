package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// jobShell is an interactive bash on a pseudo-terminal of its own, the
// session leader with it as controlling terminal, so that it does job
// control as for a user: the job-control tests type a VM's command line
// at it, then bg, fg or wait, and read what the terminal showed.
type jobShell struct {
	t   *testing.T
	sh  *exec.Cmd
	ptm *os.File      // the side the test types at and reads from
	pts *os.File      // the shell's terminal, whose mode the tests check
	out *lockedBuffer // everything the terminal showed
}

// startJobShell starts bash (its path) on a new pseudo-terminal and
// waits for its prompt. The test's cleanup kills it.
func startJobShell(t *testing.T, bash string) *jobShell {
	ptm, pts := openPTYPair(t) // snapshotsafe_test.go
	sh := exec.Command(bash, "--norc", "--noprofile", "--noediting", "-i")
	sh.Stdin, sh.Stdout, sh.Stderr = pts, pts, pts
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	sh.Env = append(os.Environ(), "PS1=$ ")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sh.Process.Kill()
		sh.Wait()
	})
	s := &jobShell{t: t, sh: sh, ptm: ptm, pts: pts, out: new(lockedBuffer)} // lockedBuffer: contain_test.go
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			s.out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	s.waitFor("bash's prompt", func() bool { return strings.Contains(s.out.String(), "$ ") })
	return s
}

// write types str at the terminal.
func (s *jobShell) write(str string) {
	if _, err := s.ptm.WriteString(str); err != nil {
		s.t.Fatal(err)
	}
}

// isig reports whether the terminal sends signals for Ctrl-C and Ctrl-Z:
// the shell's cooked mode, not the console's raw one.
func (s *jobShell) isig() bool { return termiosOf(s.t, s.pts).Lflag&unix.ISIG != 0 }

// ticks counts the ticks of tickEchoKernel or tickExitKernel the terminal
// showed.
func (s *jobShell) ticks() int { return strings.Count(s.out.String(), tick) }

// waitFor waits up to 20 s for ok, then fails the test, saying what it
// waited for and what the terminal showed.
func (s *jobShell) waitFor(what string, ok func() bool) {
	s.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: timed out; the terminal showed:\n%s", what, s.out)
		}
	}
}

// runVM types line, a smolvmm run, at the prompt and waits until its VMM
// runs under the seccomp filter with the terminal in raw mode. job is the
// process the shell started, vm the VMM: job itself, or with jailed
// (--jail) job's only child. The test's cleanup kills both before the
// shell.
func (s *jobShell) runVM(line string, jailed bool) (job, vm int) {
	s.t.Helper()
	s.t.Cleanup(func() {
		for _, p := range []int{vm, job} {
			if p != 0 {
				unix.Kill(p, unix.SIGKILL)
			}
		}
	})
	s.write(line)
	what := "the VM in raw mode, under the filter"
	if jailed {
		what = "the jailed VM in raw mode, under the filter"
	}
	s.waitFor(what, func() bool {
		if kids := childrenOf(s.sh.Process.Pid); len(kids) == 1 { // broker_test.go
			job = kids[0]
		}
		if !jailed {
			vm = job
		} else if kids := childrenOf(job); job != 0 && len(kids) == 1 {
			vm = kids[0]
		}
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(vm) + "/status")
		return vm != 0 && !s.isig() && strings.Contains(string(st), "\nSeccomp:\t2\n")
	})
	return job, vm
}

// procState is the state letter of process pid in /proc (R, S, T for
// stopped, Z for a zombie, ...), or "gone" once it is reaped.
func procState(pid int) string {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "gone"
	}
	// pid (comm) state ...
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	if len(f) == 0 {
		return "gone"
	}
	return f[0]
}
