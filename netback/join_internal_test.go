package netback

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// Which failures to join a hub end a VM's reconnecting: the refusals that
// asking again cannot change, and another protocol version.
func TestPermanentJoinError(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&RefusedError{Reason: RefusedMalformed}, true},
		{&RefusedError{Reason: RefusedVersion}, true},
		{&RefusedError{Reason: RefusedForward}, true},
		{&RefusedError{Reason: RefusedDuplicateMAC}, false},
		{&RefusedError{Reason: RefusedNoAddress}, false},
		{&RefusedError{Reason: RefusedUserLimit}, false},
		{&RefusedError{Reason: RefusedClosing}, false},
		{&RefusedError{Reason: 200}, false},
		{fmt.Errorf("shared network x: %w", &hubVersionError{hub: 2, vm: 1}), true},
		{fmt.Errorf("%w: bad magic", ErrHubProtocol), false},
		{fmt.Errorf("%w: nothing answers", ErrNoHub), false},
		{io.EOF, false},
	}
	for _, tt := range tests {
		if got := permanentJoinError(tt.err); got != tt.want {
			t.Errorf("%v: permanent %v, want %v", tt.err, got, tt.want)
		}
	}
}

// fakeHub answers the next connection's hello with version, status and
// body, and returns the connection.
func fakeHub(t *testing.T, ln net.Listener, version, status byte, body string) net.Conn {
	t.Helper()
	ln.(*net.UnixListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var h [hubHeaderSize]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint16(h[6:]))); err != nil {
		t.Fatal(err)
	}
	ans := []byte{'S', 'M', 'V', 'N', version, status, 0, 0}
	binary.BigEndian.PutUint16(ans[6:], uint16(len(body)))
	if _, err := c.Write(append(ans, body...)); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// A VM whose hub went away and refuses it on its return stops
// reconnecting (Failed, and Err says why) when asking again cannot help,
// and else keeps trying until it is let in.
func TestJoinedRefusedOnReconnect(t *testing.T) {
	tests := []struct {
		name            string
		version, status byte
		permanent       bool
	}{
		{"host port taken", hubVersion, byte(RefusedForward), true},
		{"malformed hello", hubVersion, byte(RefusedMalformed), true},
		{"another version", hubVersion + 1, byte(RefusedVersion), true},
		{"MAC still connected", hubVersion, byte(RefusedDuplicateMAC), false},
		{"no address left", hubVersion, byte(RefusedNoAddress), false},
		{"hub shutting down", hubVersion, byte(RefusedClosing), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(testsock.Dir(t), "fake.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			type joined struct {
				j   *Joined
				err error
			}
			res := make(chan joined, 1)
			go func() {
				j, err := Join(sock, net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, nil)
				res <- joined{j, err}
			}()
			first := fakeHub(t, ln, hubVersion, 0, `{"addr":"10.0.2.15"}`)
			r := <-res
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.j.Close()
			first.Close() // the hub is gone; it answers the redial thus:
			fakeHub(t, ln, tt.version, tt.status, `{"error":"no"}`)
			if tt.permanent {
				select {
				case <-r.j.Failed():
				case <-time.After(10 * time.Second):
					t.Fatal("still reconnecting 10 s after a permanent refusal")
				}
				var re *RefusedError
				if err := r.j.Err(); !(errors.As(err, &re) && re.Reason == Refusal(tt.status)) && !errors.Is(err, ErrHubProtocol) {
					t.Errorf("Err() = %v, want the refusal", err)
				}
				return
			}
			fakeHub(t, ln, hubVersion, 0, `{"addr":"10.0.2.15"}`)
			for deadline := time.Now().Add(10 * time.Second); r.j.Connects() != 2; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("not reconnected 10 s after the hub let it in")
				}
			}
			select {
			case <-r.j.Failed():
				t.Errorf("gave up after a passing refusal: %v", r.j.Err())
			default:
			}
		})
	}
}

// What a VM's log is told of failed redials: the first, then only a
// change of error, and an EACCES one says the process may not reach the
// socket while it keeps trying.
func TestRedialReport(t *testing.T) {
	noHub := fmt.Errorf("%w: nothing answers on /s: %w", ErrNoHub, syscall.ENOENT)
	refusedConn := fmt.Errorf("%w: nothing answers on /s: %w", ErrNoHub, syscall.ECONNREFUSED)
	denied := fmt.Errorf("shared network /s: dial unix /s: connect: %w", syscall.EACCES)
	dup := &RefusedError{Socket: "/s", Reason: RefusedDuplicateMAC, Message: "connected already"}
	port := &RefusedError{Socket: "/s", Reason: RefusedForward, Message: "taken"}
	steps := []struct {
		err  error
		want string // "" for nothing logged
	}{
		{noHub, "cannot rejoin: " + noHub.Error() + "; still trying"},
		{noHub, ""},
		{noHub, ""},
		{refusedConn, "cannot rejoin: " + refusedConn.Error() + "; still trying"},
		{denied, "cannot rejoin: " + denied.Error() + " (this process, as its user and root directory are now, may not reach the socket); still trying"},
		{denied, ""},
		{dup, "cannot rejoin: " + dup.Error() + "; still trying"},
		{noHub, "cannot rejoin: " + noHub.Error() + "; still trying"},
		{port, "cannot rejoin: " + port.Error() + "; giving up"},
	}
	var r redialReport
	for i, s := range steps {
		got, ok := r.note(s.err)
		if ok != (s.want != "") || got != s.want {
			t.Errorf("step %d (%v): %q %v, want %q", i, s.err, got, ok, s.want)
		}
	}
}

// A VM whose network is away says so once when it fails to rejoin, again
// when the failure changes, and not at every attempt.
func TestJoinedRedialLogged(t *testing.T) {
	logf, logged := lineRecorder()
	sock, ln, first, j := joinFakeHub(t, JoinOptions{Name: "web", Logf: logf})
	defer j.Close()
	ln.Close() // removes the socket file: the redials find nothing
	first.Close()
	waitFailedDials(t, j, 3)
	// A file that is no socket there: another error.
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFailedDials(t, j, j.failedDials.Load()+3)
	// The network back, at once: no redial finds the path empty.
	ln, err := net.Listen("unix", sock+".new")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Rename(sock+".new", sock); err != nil {
		t.Fatal(err)
	}
	fakeHub(t, ln, hubVersion, 0, `{"addr":"10.0.2.15"}`)
	waitConnects(t, j, 2)
	logs := logged()
	var failed []string
	for _, l := range logs {
		if strings.Contains(l, "cannot rejoin") {
			failed = append(failed, l)
		}
	}
	if len(failed) != 2 || !strings.Contains(failed[0], "no such file or directory; still trying") ||
		!strings.Contains(failed[len(failed)-1], "connection refused; still trying") || !strings.HasPrefix(failed[0], "shared network web: cannot rejoin: ") {
		t.Errorf("the failed redials were logged as\n%s\nwant the first (no such file) and the change (connection refused), once each", strings.Join(logs, "\n"))
	}
}

// Which failed rejoins will not go away by themselves (Notef is told of
// them without -v): a permission refused, and what the caller's Lasting
// adds (a path the process no longer sees); not a network being restarted.
func TestLastingJoinError(t *testing.T) {
	noHub := fmt.Errorf("%w: nothing answers on /s: %w", ErrNoHub, syscall.ENOENT)
	refusedConn := fmt.Errorf("%w: nothing answers on /s: %w", ErrNoHub, syscall.ECONNREFUSED)
	denied := fmt.Errorf("shared network /s: dial unix /s: connect: %w", syscall.EACCES)
	notPermitted := fmt.Errorf("shared network /s: dial unix /s: connect: %w", syscall.EPERM)
	enoent := func(err error) bool { return errors.Is(err, syscall.ENOENT) }
	tests := []struct {
		err     error
		lasting func(error) bool
		want    bool
	}{
		{noHub, nil, false},
		{refusedConn, nil, false},
		{denied, nil, true},
		{notPermitted, nil, true},
		{noHub, enoent, true},
		{refusedConn, enoent, false},
		{&RefusedError{Reason: RefusedDuplicateMAC}, nil, false},
		{&ForeignHubError{Socket: "/s", Path: "/s", UID: 4321}, nil, true},
	}
	for _, tt := range tests {
		j := &Joined{lasting: tt.lasting}
		if got := j.lastingJoinError(tt.err); got != tt.want {
			t.Errorf("%v (with Lasting %v): lasting %v, want %v", tt.err, tt.lasting != nil, got, tt.want)
		}
	}
}

// Notef (the VM's notices without -v) is told, in a line each, that the
// network was lost, the first failed rejoin that will not go away by
// itself (here ENOENT, which Lasting says is, as for a socket outside a
// chroot), not the failures that follow, and the rejoin; and the same again
// for the next outage.
func TestJoinedNotef(t *testing.T) {
	notef, noted := lineRecorder()
	lasting := func(err error) bool { return errors.Is(err, syscall.ENOENT) }
	sock, ln, conn, j := joinFakeHub(t, JoinOptions{Name: "web", Notef: notef, Lasting: lasting})
	defer j.Close()
	addrs := []string{1: "10.0.2.15", 2: "10.0.2.16"} // at each rejoin
	for outage := 1; outage <= 2; outage++ {
		ln.Close()
		os.Remove(sock) // a renamed listener's Close leaves it: the redials find nothing
		conn.Close()
		waitFailedDials(t, j, j.failedDials.Load()+3)
		var err error
		ln, err = net.Listen("unix", sock+".new")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := os.Rename(sock+".new", sock); err != nil {
			t.Fatal(err)
		}
		conn = fakeHub(t, ln, hubVersion, 0, `{"addr":"`+addrs[outage]+`"}`)
		waitConnects(t, j, uint64(outage+1))
	}
	j.Close() // joins the goroutine that notes the rejoin
	notes := noted()
	var want []string
	for _, rejoined := range []string{
		"rejoined shared network web as 10.0.2.15",
		// A network restarted with other leases: the guest has the
		// old address until its DHCP client learns the new one.
		"rejoined shared network web at another address, 10.0.2.16 (was 10.0.2.15): the guest keeps 10.0.2.15, and is offline, until its DHCP client asks again (when the link is back, if it watches it, else when it next renews its lease, within 30 minutes) and is refused it, its lease ends (within 60 minutes, when another VM has 10.0.2.15 now: the network passes no request from another VM's address), or its network is restarted",
	} {
		want = append(want,
			"shared network web lost (EOF); the VM is offline until it rejoins",
			"shared network web: cannot rejoin: shared network is not running: nothing answers on "+sock+": dial unix "+sock+": connect: no such file or directory (this process, as its user and root directory are now, may not reach the socket); still trying",
			rejoined)
	}
	if strings.Join(notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(notes, "\n"), strings.Join(want, "\n"))
	}
}

// lineRecorder is a Logf or Notef that keeps its lines, and what returns
// them so far.
func lineRecorder() (record func(string, ...any), lines func() []string) {
	var mu sync.Mutex
	var kept []string
	record = func(f string, a ...any) {
		mu.Lock()
		kept = append(kept, fmt.Sprintf(f, a...))
		mu.Unlock()
	}
	lines = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(kept)
	}
	return record, lines
}

// joinFakeHub joins, with o, a fake hub on a socket in a temporary
// directory that admits the VM as 10.0.2.15: the socket, its listener, the
// hub's end of the connection and the joined network.
func joinFakeHub(t *testing.T, o JoinOptions) (string, net.Listener, net.Conn, *Joined) {
	t.Helper()
	sock := filepath.Join(testsock.Dir(t), "fake.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan *Joined, 1)
	go func() {
		j, err := JoinWith(sock, net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, nil, o)
		if err != nil {
			t.Error(err)
		}
		res <- j
	}()
	conn := fakeHub(t, ln, hubVersion, 0, `{"addr":"10.0.2.15"}`)
	j := <-res
	if j == nil {
		t.FailNow()
	}
	return sock, ln, conn, j
}

// waitFailedDials waits until j has failed n redials.
func waitFailedDials(t *testing.T, j *Joined, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); j.failedDials.Load() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed redials after 20 s, want %d", j.failedDials.Load(), n)
		}
	}
}

// waitConnects waits until j has connected n times in all.
func waitConnects(t *testing.T, j *Joined, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); j.Connects() != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not reconnected")
		}
	}
}

// A hub that takes no frame (stopped with SIGSTOP, or hung) holds up
// WriteFrame for joinWriteTimeoutFor at most: the frame is counted
// unsent, the connection dropped and the log told why, and the VM
// rejoins when the network answers again. Before, WriteFrame waited as
// long as the hub did, and with it the device's transmit worker and every
// register write of the vCPU that waited for that worker.
func TestJoinedWriteToStalledHub(t *testing.T) {
	defer func(d time.Duration) { joinWriteTimeoutFor = d }(joinWriteTimeoutFor)
	joinWriteTimeoutFor = 100 * time.Millisecond
	logf, logged := lineRecorder()
	_, ln, _, j := joinFakeHub(t, JoinOptions{Name: "web", Logf: logf}) // the hub's end never reads
	defer j.Close()
	frame := make([]byte, 60000)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 1, 0x88, 0xb5})
	done := make(chan error, 1)
	go func() {
		// The socket's buffers hold a few hundred KiB: far fewer frames.
		for range 200 {
			start := time.Now()
			if err := j.WriteFrame(frame); err != nil {
				done <- err
				return
			}
			if d := time.Since(start); d > joinWriteTimeoutFor+2*time.Second {
				done <- fmt.Errorf("a WriteFrame took %v, the bound is %v", d, joinWriteTimeoutFor)
				return
			}
			if j.Stats().Unsent > 0 {
				done <- nil
				return
			}
		}
		done <- fmt.Errorf("200 frames of 60000 bytes written to a hub that reads none; stats %+v", j.Stats())
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("WriteFrame still blocked after 10 s on a hub that reads nothing; stats %+v", j.Stats())
	}
	fakeHub(t, ln, hubVersion, 0, `{"addr":"10.0.2.15"}`)
	waitConnects(t, j, 2)
	before := j.Stats()
	if err := j.WriteFrame(frame); err != nil || j.Stats().FromGuest != before.FromGuest+1 {
		t.Fatalf("after the rejoin: WriteFrame %v, stats %+v (before %+v)", err, j.Stats(), before)
	}
	want := "shared network web lost: the network took no frame for 100ms (stopped or hung); reconnecting"
	if logs := logged(); !slices.Contains(logs, want) {
		t.Errorf("log:\n%s\nwant the line %q", strings.Join(logs, "\n"), want)
	}
}

// Close ends a rejoin in progress at once: a stopped network's socket
// still takes connections (its backlog) and answers none, and a VM
// exiting meanwhile waited out the handshake's timeout. The dial needs no
// goroutine of its own to hear Close (before, one per dial watched for
// it, which Close did not wait for).
func TestJoinedCloseDuringRejoin(t *testing.T) {
	logf, logged := lineRecorder()
	_, ln, conn, j := joinFakeHub(t, JoinOptions{Name: "web", Logf: logf})
	// Kept open to the end: collected, its finalizer would close it,
	// and the redial would be refused rather than wait.
	defer ln.Close()
	conn.Close()
	// The first redial connects and says its hello, which is never
	// answered: from then on it waits in the handshake.
	_ = ln.(*net.UnixListener).SetDeadline(time.Now().Add(10 * time.Second))
	redial, err := ln.Accept()
	if err != nil {
		t.Fatalf("no redial within 10s: %v", err)
	}
	defer redial.Close()
	_ = redial.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hello hubHello
	if _, _, err := readHubMessage(redial, &hello); err != nil {
		t.Fatalf("the redial's hello: %v", err)
	}
	if n := dialGoroutines(); n != 0 {
		t.Errorf("%d goroutines of Joined.dial's own during a redial, want none", n)
	}
	start := time.Now()
	j.Close()
	// Well under the handshake's timeout, which a Close that waited
	// for the redial would wait out, and above a loaded host's delays.
	if d := time.Since(start); d > hubHandshakeTimeout/2 {
		t.Errorf("Close took %v during a rejoin that got no answer, want it at once", d)
	}
	if n := dialGoroutines(); n != 0 {
		t.Errorf("%d goroutines of Joined.dial's own after Close, want none", n)
	}
	for _, l := range logged() {
		if strings.Contains(l, "cannot rejoin") {
			t.Errorf("Close's end of the rejoin was logged: %q", l)
		}
	}
}

// dialGoroutines counts the goroutines running a function that
// Joined.dial started (not dial itself, which run calls).
func dialGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "(*Joined).dial.func") && strings.Contains(g, "created by github.com/smolvmm/smolvmm/netback.(*Joined).dial") {
			n++
		}
	}
	return n
}
