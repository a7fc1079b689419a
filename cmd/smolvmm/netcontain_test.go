package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/snapshot"
)

// threadStatus is the value of field (e.g. "Seccomp") in the status of
// every thread of process pid, by thread.
func threadStatus(t *testing.T, pid int, field string) map[string]string {
	t.Helper()
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "status"))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	got := map[string]string{}
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				got[filepath.Base(filepath.Dir(path))] = strings.TrimSpace(v)
			}
		}
	}
	return got
}

// TestNetDaemonContained: smolvmm net runs under its seccomp filter, with
// no_new_privs, on every thread once it listens (mode 2, filter), and says
// its size with -v; --no-seccomp leaves it without (mode 0). Its leases
// are still written (through its broker) when it stops, and read again
// by the next start.
func TestNetDaemonContained(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the seccomp filter is linux/amd64's")
	}
	for _, tc := range []struct {
		name      string
		args      []string
		seccomp   string
		noNewPriv string
	}{
		{"filtered", nil, "2", "1"},
		{"no-seccomp", []string{"--no-seccomp"}, "0", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			socket := filepath.Join(dir, "n.sock")
			leases := filepath.Join(dir, "n.leases")
			d := startNetDaemon(t, socket, append([]string{"--leases", leases}, tc.args...)...)
			pid := d.cmd.Process.Pid
			for field, want := range map[string]string{"Seccomp": tc.seccomp, "NoNewPrivs": tc.noNewPriv} {
				for tid, v := range threadStatus(t, pid, field) {
					if v != want {
						t.Errorf("thread %s: %s: %s, want %s", tid, field, v, want)
					}
				}
			}
			if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			d.expect(t, "stopped")
			if err := d.cmd.Wait(); err != nil {
				t.Fatalf("smolvmm net: %v", err)
			}
			b, err := os.ReadFile(leases)
			if err != nil || !bytes.Contains(b, []byte(`"leases"`)) {
				t.Fatalf("lease file after the stop: %q %v", b, err)
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".n.leases.*"))
			if len(left) != 0 {
				t.Errorf("temporaries left: %v", left)
			}
			if _, err := os.Lstat(socket); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the socket after the stop: %v; want it removed", err)
			}
			// The next start reads them.
			startNetDaemon(t, socket, append([]string{"--leases", leases}, tc.args...)...)
		})
	}
}

// TestNetDaemonVerbose: -v says the filter's size before the start line.
func TestNetDaemonVerbose(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the seccomp filter is linux/amd64's")
	}
	dir := t.TempDir()
	socket := filepath.Join(dir, "n.sock")
	cmd := exec.Command(smolvmmBin(t), "net", "-v", "--socket", socket)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 4096)
	var out []byte
	for !bytes.Contains(out, []byte("listening on")) {
		n, err := stderr.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(first, "smolvmm net: seccomp filter of ") || !strings.HasSuffix(first, " bytes) installed on every thread") {
		t.Fatalf("first line %q, want the filter's size", first)
	}
}

// TestNetDaemonForbiddenCall: a call outside the daemon's filter, made
// once it is set up (as a network stack a VM took over would), stops it
// with the message naming the call and sandbox.ExitStatus; what the
// daemon needs (a port forward's bind and listen) is allowed.
func TestNetDaemonForbiddenCall(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the seccomp filter is linux/amd64's")
	}
	for _, tc := range []struct {
		hook   string
		status int
		want   string
	}{
		{"exec:/bin/true", sandbox.ExitStatus, "smolvmm net: seccomp: the network attempted the forbidden execve (system call 59) and was stopped (smolvmm net --no-seccomp turns the filter off; please report the call)"},
		{"raw-socket", sandbox.ExitStatus, "smolvmm net: seccomp: the network attempted the forbidden socket (system call 41) and was stopped"},
		{"connect:/run/nothing.sock", sandbox.ExitStatus, "smolvmm net: seccomp: the network attempted the forbidden socket (system call 41) and was stopped"},
		{"unlinkat:x", sandbox.ExitStatus, "smolvmm net: seccomp: the network attempted the forbidden unlinkat (system call 263) and was stopped"},
		{"listen:127.0.0.1:0", -1, "smolvmm-test: listen 127.0.0.1:0: <nil>"},
	} {
		t.Run(tc.hook, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(smolvmmBin(t), "net", "--socket", filepath.Join(dir, "n.sock"))
			cmd.Env = append(os.Environ(), testHookEnv+"="+tc.hook)
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			if tc.status < 0 {
				// Allowed: the daemon goes on, and stops when asked.
				deadline := time.Now().Add(20 * time.Second)
				for !strings.Contains(stderr.String(), "listening on") && time.Now().Before(deadline) {
					select {
					case err = <-done:
						t.Fatalf("smolvmm net ended: %v\n%s", err, stderr.String())
					case <-time.After(20 * time.Millisecond):
					}
				}
				_ = cmd.Process.Signal(os.Interrupt)
				err = <-done
				if err != nil {
					t.Fatalf("smolvmm net: %v\n%s", err, stderr.String())
				}
			} else {
				select {
				case err = <-done:
				case <-time.After(20 * time.Second):
					cmd.Process.Kill()
					t.Fatalf("smolvmm net went on after %s:\n%s", tc.hook, stderr.String())
				}
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != tc.status {
					t.Fatalf("smolvmm net: %v, want status %d\n%s", err, tc.status, stderr.String())
				}
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr:\n%s\nwant %q", stderr.String(), tc.want)
			}
		})
	}
}

// TestRemoveSocketFile: the network's broker removes the socket path it
// was given only while it is the socket the daemon bound (its device
// and inode): not another socket made there since, nor another kind of
// file; one gone already is no error.
func TestRemoveSocketFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace func(t *testing.T, path string) // after the identity is taken
		removed bool
	}{
		{"the daemon's", nil, true},
		{"gone", func(t *testing.T, path string) { os.Remove(path) }, true},
		{"another socket", func(t *testing.T, path string) {
			os.Remove(path)
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			t.Cleanup(func() { ln.Close() })
		}, false},
		{"a file", func(t *testing.T, path string) {
			os.Remove(path)
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(testsock.Dir(t), "n.sock")
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			defer ln.Close()
			var st unix.Stat_t
			if err := unix.Lstat(path, &st); err != nil {
				t.Fatal(err)
			}
			id := snapshot.FileID{Dev: uint64(st.Dev), Ino: st.Ino}
			if tc.replace != nil {
				tc.replace(t, path)
			}
			_, statErr := os.Lstat(path)
			present := statErr == nil
			dir, err := os.Open(t.TempDir()) // another directory: the path is absolute
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			if err := removeSocketFile(int(dir.Fd()), path, id); err != nil {
				t.Fatalf("removeSocketFile: %v", err)
			}
			_, err = os.Lstat(path)
			if gone := errors.Is(err, os.ErrNotExist); gone != (tc.removed || !present) {
				t.Errorf("after removeSocketFile: %v; want removed %v", err, tc.removed)
			}
		})
	}
}

// TestBrokerSocketArgs: a shared network's broker takes its socket as an
// absolute, clean path and a DEV:INO; a VMM's broker (no socket) refuses
// the request to remove one.
func TestBrokerSocketArgs(t *testing.T) {
	base := []string{"smolvmm-broker", "n.leases", ".a.tmp", ".b.tmp", "-", "2049:12", "2049:13"}
	good, err := parseBrokerArgs(append(base[:7:7], "/run/user/1000/smolvmm/net.sock", "2049:14"))
	if err != nil || good.socket != "/run/user/1000/smolvmm/net.sock" || good.socketID != (snapshot.FileID{Dev: 2049, Ino: 14}) {
		t.Fatalf("parseBrokerArgs with a socket: %+v, %v", good, err)
	}
	if got := good.list(); len(got) != 9 || got[7] != good.socket || got[8] != "2049:14" {
		t.Errorf("list() = %q; want the socket and its identity last", got)
	}
	// Neither asks the renamer, which is nil here.
	for _, tc := range []struct {
		a   brokerArgs
		req []byte
	}{
		{brokerArgs{}, []byte{opRemoveSocket}},
		{good, []byte{opRemoveSocket, 0}},
		{good, []byte("s/etc/passwd")},
		{good, []byte{'x'}},
		{good, nil},
	} {
		if err := brokerServe(tc.a, nil, tc.req); !errors.Is(err, unix.EINVAL) {
			t.Errorf("request %q (socket %q): %v; want %v", tc.req, tc.a.socket, err, unix.EINVAL)
		}
	}
	for _, extra := range [][]string{
		{"net.sock", "2049:14"},
		{"/run/../etc/passwd", "2049:14"},
		{"/run/x/", "2049:14"},
		{"/run/net.sock", "-"},
		{"/run/net.sock", "2049:0"},
		{"/run/net.sock"},
	} {
		args := append(base[:7:7], extra...)
		if got := brokerMain(args); got != 2 {
			t.Errorf("brokerMain(%q) = %d; want 2, refused", args, got)
		}
	}
}

// TestBrokerFilterOwner: a forbidden call of the shared network's broker
// is reported as the network's, with smolvmm net's advice; a VMM's as
// the VMM's.
func TestBrokerFilterOwner(t *testing.T) {
	for _, tc := range []struct {
		network                 bool
		command                 string
		process, prefix, advice string
	}{
		{true, "", "the network's broker", "smolvmm net: ", "(smolvmm net --no-seccomp"},
		{false, "run", "the VMM's broker", "smolvmm: ", "(smolvmm run --no-seccomp"},
		{false, "up", "the VMM's broker", "smolvmm: ", "(smolvmm up --no-seccomp"},
	} {
		f := brokerFilter(tc.network, tc.command)
		if f.Process != tc.process || f.Prefix != tc.prefix || !strings.Contains(f.Advice, tc.advice) || f.RenameDir != brokerDirFD {
			t.Errorf("brokerFilter(%v): process %q, prefix %q, advice %q, RenameDir %d; want %q, %q, %q..., %d",
				tc.network, f.Process, f.Prefix, f.Advice, f.RenameDir, tc.process, tc.prefix, tc.advice, brokerDirFD)
		}
	}
}
