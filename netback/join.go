package netback

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/smolvmm/smolvmm/internal/goid"
	"github.com/smolvmm/smolvmm/internal/termsafe"
)

// Reconnection delays of a Joined backend: the first retry comes soon (a
// hub being restarted is back within moments), later ones back off.
const (
	joinRetryMin = 20 * time.Millisecond
	joinRetryMax = time.Second
	// joinWriteTimeout bounds WriteFrame's wait for a hub that takes no
	// frame (stopped with SIGSTOP, or hung): the device's transmit
	// worker must not wait on it for ever. A hub that is up takes a
	// frame within microseconds, a busy one within milliseconds.
	joinWriteTimeout = time.Second
	// joinCloseWait bounds Close's wait for the hub to take the VM out
	// (its end of the connection closed), which an up hub does within
	// milliseconds: a stopped one must not hold up the VM's exit.
	joinCloseWait = time.Second
	// joinDuplicateWait is how long Join asks again while the hub says
	// its MAC is connected already: most often that is the VM's own
	// previous process, killed, whose connection the hub has not yet
	// seen end.
	joinDuplicateWait = time.Second
)

// joinWriteTimeoutFor, joinCloseWaitFor and joinDuplicateWaitFor are
// joinWriteTimeout, joinCloseWait and joinDuplicateWait, variables for
// the tests.
var (
	joinWriteTimeoutFor  = joinWriteTimeout
	joinCloseWaitFor     = joinCloseWait
	joinDuplicateWaitFor = joinDuplicateWait
)

// Joined is the backend of a VM on a shared network (a Hub, most often in
// another process: "smolvmm net"). Its frames travel the hub's Unix
// socket. If the hub goes away the VM keeps running: frames from the guest
// are dropped and counted (Stats.Unsent), and the backend dials the
// socket again; a hub that takes no frame for joinWriteTimeout (stopped,
// or hung) is treated as gone the same way, with backoff, until the hub answers; the hub then gives
// the MAC its address again (its lease file keeps it) and re-creates the
// forwards. A refusal that asking again cannot change
// (RefusedError.Permanent: a host port taken meanwhile, another protocol
// version) ends the dialing instead: Failed is closed and Err says why,
// and the VM stays unplugged until its owner stops it. It dials with
// socket(AF_UNIX) and connect, which a VMM's seccomp filter must allow
// (sandbox.Filter.UnixSockets).
type Joined struct {
	socket  string
	hello   hubHello
	toGuest *frameQueue
	done    chan struct{}
	runDone chan struct{} // closed when run returns
	// runID is run's goroutine (goid.ID), where the callbacks are told:
	// Close called from there cannot wait for run to end.
	runID  atomic.Uint64
	failed chan struct{} // closed when the hub refused a reconnection for good
	wg     sync.WaitGroup
	// closing is cancelled by Close (stop): each dial's context derives
	// from it, so that Close ends a dial without a goroutine to watch
	// done.
	closing context.Context
	stop    context.CancelFunc

	wmu     sync.Mutex // serialises WriteFrame's writes
	mu      sync.Mutex // guards conn, addr, lastErr, failErr; held briefly
	conn    net.Conn   // nil while disconnected
	addr    netip.Addr
	lastErr error
	failErr error // the refusal that closed failed
	cut     error // why WriteFrame dropped the connection, for run to report

	sent, unsent, connects atomic.Uint64
	failedDials            atomic.Uint64 // redials that failed
	closeOnce              sync.Once

	// checkPeer says whether the process listening must run as euid
	// (this process's user when it joined) or root: whether socket is in
	// HubDir, where names lead (checkHubConn).
	checkPeer bool
	euid      int

	name    string                           // the network, as the log calls it
	logf    func(format string, args ...any) // JoinOptions.Logf, or a no-op
	notef   func(format string, args ...any) // JoinOptions.Notef, or a no-op
	lasting func(error) bool                 // JoinOptions.Lasting, or nil
	// link is SetLinkNotify's function, told as the connection is lost
	// and rejoined (linkDown says which it was last). Its calls are made
	// without linkMu, which guards these: the notices wait in linkQueue,
	// told in order by one goroutine at a time (linkTelling).
	linkMu      sync.Mutex
	link        func(up bool)
	linkDown    bool
	linkQueue   []bool
	linkTelling bool
}

// JoinOptions are JoinWith's optional settings.
type JoinOptions struct {
	// Name is what log messages call the network; "" means its socket.
	Name string
	// Logf, when set, is told when the connection to the network is lost,
	// when rejoining it fails (the first time, and again when the error
	// changes) and when the VM has rejoined: once per event, not per
	// attempt. It, Notef and Lasting are called on the backend's own
	// goroutine, which waits for them; each may call Close (which then
	// returns without waiting for that goroutine, which ends once the
	// callback returns). Logf and Notef are told lines whose control
	// characters are escaped (termsafe.Line): one may carry the hub's
	// own words.
	Logf func(format string, args ...any)
	// Notef, when set, is told in one line each, whatever Logf is: that
	// the connection was lost, the first failure to rejoin in that
	// outage that will not go away by itself (a permission refused, or
	// one Lasting names), and that the VM rejoined. It is for a VM
	// without a detailed log, which would otherwise be offline silently.
	Notef func(format string, args ...any)
	// Lasting, when set, says of a failed rejoin's error whether it will
	// persist (besides a permission refused, which always does): only
	// the caller knows, say, that its root directory no longer holds the
	// socket's path, where ENOENT would otherwise be a network restarting.
	Lasting func(error) bool
	// RunsAs is the uid the VM's process will run as once set up, when
	// it joins as root and then drops root (0: it stays as it is). The
	// hub believes it of a root process only, and lets that uid rejoin
	// the MAC, after the hub restarts, with the forwards of host ports
	// below the first unprivileged one that this root join was allowed;
	// without it, only root may. Every join of this backend sends it.
	RunsAs int
}

// inertf is f, nil for nil, told each line with its control characters
// escaped (termsafe.Line), as a hub's own log is: a line may carry the
// hub's words (a refusal's message), and a hub may be another user's,
// whose message then forged a line of the VM's log or acted on the
// terminal of whoever read it.
func inertf(f func(format string, args ...any)) func(format string, args ...any) {
	if f == nil {
		return nil
	}
	return func(format string, args ...any) { f("%s", termsafe.Line(fmt.Sprintf(format, args...))) }
}

// Join connects a VM whose NIC has address mac to the shared network
// listening on socket, asking for forwards. Errors: ErrNoHub (wrapped)
// when no hub answers there, a *RefusedError when the hub refuses the VM
// (a host port taken; a duplicate MAC, once the MAC stayed connected for
// joinDuplicateWait), a *ForeignHubError when socket is in this user's
// HubDir (a network's name led there) but that directory or the process
// listening is another user's (not root's), ErrHubProtocol for anything
// else on the socket. Forwards naming one host port twice (CheckForwards) are
// refused before anything is sent.
func Join(socket string, mac net.HardwareAddr, forwards []Forward) (*Joined, error) {
	return JoinWith(socket, mac, forwards, JoinOptions{})
}

// JoinWith is Join with options.
func JoinWith(socket string, mac net.HardwareAddr, forwards []Forward, o JoinOptions) (*Joined, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("shared network: guest MAC %q is not a 6-byte Ethernet address", mac)
	}
	if o.RunsAs < 0 || int64(o.RunsAs) > maxUID {
		return nil, fmt.Errorf("shared network: uid to run as %d is not a uid (0 to %d)", o.RunsAs, maxUID)
	}
	if err := CheckForwards(forwards); err != nil {
		return nil, fmt.Errorf("shared network: %w", err)
	}
	j := &Joined{socket: socket, hello: hubHello{MAC: mac.String(), RunsAs: o.RunsAs}, toGuest: newFrameQueue(userToGuestDepth), done: make(chan struct{}), runDone: make(chan struct{}), failed: make(chan struct{})}
	j.name, j.logf, j.notef, j.lasting = o.Name, inertf(o.Logf), inertf(o.Notef), o.Lasting
	j.closing, j.stop = context.WithCancel(context.Background())
	if j.name == "" {
		j.name = socket
	}
	if j.logf == nil {
		j.logf = func(string, ...any) {}
	}
	if j.notef == nil {
		j.notef = func(string, ...any) {}
	}
	for _, f := range forwards {
		j.hello.Forwards = append(j.hello.Forwards, f.String())
	}
	// Decided now, for every dial: a rejoin runs under the VM's seccomp
	// filter, which allows neither stat nor geteuid, and perhaps as
	// another user, in another root directory.
	j.euid = os.Geteuid()
	j.checkPeer = inHubDir(socket, HubDir())
	if err := checkHubDir(socket, HubDir(), j.euid); err != nil {
		j.stop()
		return nil, err
	}
	c, addr, err := j.dial()
	// A hub starting on the socket (smolvmm net started just before):
	// waited for, briefly, as its start line would be.
	err = awaitHubStart(socket, err, func() error {
		c, addr, err = j.dial()
		return err
	})
	// Soon at first (a killed predecessor's connection ends within
	// moments), then less often: each ask the hub refuses is a line of
	// its log, some 7 in all for a MAC that stays connected.
	wait := time.Now().Add(joinDuplicateWaitFor)
	for delay := joinRetryMin; duplicateMAC(err); delay *= 2 {
		left := time.Until(wait)
		if left <= 0 {
			break
		}
		time.Sleep(min(delay, left))
		c, addr, err = j.dial()
	}
	if err != nil {
		j.stop()
		return nil, err
	}
	j.conn, j.addr = c, addr
	// Every later dial is a rejoin (by run's goroutine, started after).
	j.hello.Rejoin = true
	j.connects.Add(1)
	j.wg.Add(1)
	go j.run(c)
	return j, nil
}

// dial connects to the hub and makes the handshake. Close ends it at
// once: a hub that is stopped accepts the connection and answers nothing
// for hubHandshakeTimeout, which an exiting VM must not wait out.
func (j *Joined) dial() (net.Conn, netip.Addr, error) {
	ctx, cancel := context.WithTimeout(j.closing, hubHandshakeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", j.socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, netip.Addr{}, fmt.Errorf("%w: nothing answers on %s: %w", ErrNoHub, j.socket, err)
		}
		return nil, netip.Addr{}, fmt.Errorf("shared network %s: %w", j.socket, err)
	}
	fail := func(err error) (net.Conn, netip.Addr, error) {
		c.Close()
		return nil, netip.Addr{}, err
	}
	// Before the hello: another user's network learns nothing.
	if j.checkPeer {
		uid, err := hubPeerUID(c)
		if err != nil {
			return fail(fmt.Errorf("shared network %s: the user of the process listening on it: %w", j.socket, err))
		}
		if err := checkHubPeer(j.socket, uid, j.euid); err != nil {
			return fail(err)
		}
	}
	_ = c.SetDeadline(time.Now().Add(hubHandshakeTimeout))
	// Close cancels ctx: the handshake's reads and writes end then too.
	unwatch := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	if err := sayHello(c, j.socket, j.hello); err != nil {
		return fail(err)
	}
	var ans hubAnswer
	ver, status, err := readHubMessage(c, &ans)
	switch {
	case err != nil:
		return fail(handshakeError(j.socket, err))
	case ver != hubVersion:
		return fail(fmt.Errorf("shared network %s: %w", j.socket, &hubVersionError{hub: ver, vm: hubVersion}))
	case status != 0:
		return fail(hubRefusal(j.socket, status, ans))
	}
	addr, err := hubAddr(ans.Addr)
	if err != nil {
		return fail(fmt.Errorf("shared network %s: %w", j.socket, err))
	}
	if !unwatch() {
		// The timeout (or Close, whose error goes unsaid) came first
		// and spoilt the deadline.
		return fail(handshakeError(j.socket, os.ErrDeadlineExceeded))
	}
	_ = c.SetDeadline(time.Time{})
	return c, addr, nil
}

// sayHello writes hello on c, a connection to the hub at socket. A hub
// that refuses a connection at once (RefusedBusy) may have closed it
// before the hello: the write fails, and the hub's answer, still there to
// read, is the error then (a *RefusedError).
func sayHello(c net.Conn, socket string, hello hubHello) error {
	err := writeHubMessage(c, 0, hello)
	if err == nil {
		return nil
	}
	var ans hubAnswer
	if ver, status, rerr := readHubMessage(c, &ans); rerr == nil && ver == hubVersion && status != 0 {
		return hubRefusal(socket, status, ans)
	}
	return handshakeError(socket, err)
}

// oldHubAdvice is the advice a hub of an older smolvmm (of this protocol
// version, so still answering after an upgrade) put after the fact of a
// refusal for these reasons. The VM's program gives its own from the
// reason: it would be said twice.
var oldHubAdvice = map[Refusal]string{
	RefusedBusy:         "; try again once fewer VMs are joining",
	RefusedDuplicateMAC: "; give each VM its own MAC",
}

// hubRefusal is the refusal a hub at socket answered with status and
// ans: its message the fact alone, whichever hub's.
func hubRefusal(socket string, status byte, ans hubAnswer) *RefusedError {
	r := Refusal(status)
	return &RefusedError{Socket: socket, Reason: r, Message: strings.TrimSuffix(ans.Error, oldHubAdvice[r])}
}

// duplicateMAC reports whether err is a hub's refusal of a MAC connected
// already.
func duplicateMAC(err error) bool {
	var re *RefusedError
	return errors.As(err, &re) && re.Reason == RefusedDuplicateMAC
}

// run reads frames for the guest until the connection ends, then dials
// again until it succeeds, Close or a permanent refusal, and so on.
func (j *Joined) run(c net.Conn) {
	defer j.wg.Done()
	defer close(j.runDone)
	j.runID.Store(goid.ID())
	for {
		// Said without the connection's addresses (connError), as a
		// failed handshake is.
		err := connError(j.read(c))
		j.mu.Lock()
		if j.cut != nil { // WriteFrame closed c: its reason, not the read's
			err, j.cut = j.cut, nil
		}
		j.conn, j.lastErr = nil, err
		j.mu.Unlock()
		c.Close()
		select {
		case <-j.done:
			return
		default:
		}
		j.linkChanged(false)
		j.logf("shared network %s lost: %v; reconnecting", j.name, err)
		j.notef("shared network %s lost (%v); the VM is offline until it rejoins", j.name, err)
		was := j.Addr()
		if c = j.redial(); c == nil {
			return
		}
		j.linkChanged(true)
		if now := j.Addr(); now != was {
			// The guest keeps the old address, which the network no
			// longer routes, until its DHCP client is refused it.
			j.logf("rejoined %s as %s, no longer %s", j.name, now, was)
			j.notef("rejoined shared network %s at another address, %s (was %s): the guest keeps %s, and is offline, until its DHCP client asks again (when the link is back, if it watches it, else when it next renews its lease, within %d minutes) and is refused it, its lease ends (within %d minutes, when another VM has %s now: the network passes no request from another VM's address), or its network is restarted", j.name, now, was, was, int(dhcpLeaseTime/2/time.Minute), int(dhcpLeaseTime/time.Minute), was)
		} else {
			j.logf("rejoined %s as %s", j.name, now)
			j.notef("rejoined shared network %s as %s", j.name, now)
		}
	}
}

// read moves frames from the hub to the guest's queue (dropping them when
// it is full) until the connection fails.
func (j *Joined) read(c net.Conn) error {
	br := bufio.NewReaderSize(c, hubIOBuffer)
	buf := make([]byte, smallFrame)
	parts := make([][]byte, 1)
	for {
		f, err := readFramed(br, buf)
		if err != nil {
			return err
		}
		buf = f[:cap(f)]
		parts[0] = f
		j.toGuest.pushParts(parts)
	}
}

// SetLinkNotify makes the backend call notify(false) when its connection
// to the network is lost and notify(true) once it has rejoined, holding
// none of its locks, one call at a time and in order: a virtio-net device
// shows it to the guest as its link's status (virtio/net.LinkBackend), so
// that the guest's DHCP client asks again for its lease on rejoining,
// where its address may have changed. Called while the connection is
// lost, it tells notify(false) before returning, unless a notice is being
// told meanwhile: its goroutine then tells this one after it. notify may
// call Close, as JoinOptions' callbacks may.
func (j *Joined) SetLinkNotify(notify func(up bool)) {
	j.linkMu.Lock()
	j.link = notify
	if j.linkDown {
		j.linkQueue = append(j.linkQueue, false)
	}
	j.tellLink()
}

// linkChanged tells SetLinkNotify's function, if any, that the link is up
// or down.
func (j *Joined) linkChanged(up bool) {
	j.linkMu.Lock()
	j.linkDown = !up
	if j.link != nil {
		j.linkQueue = append(j.linkQueue, up)
	}
	j.tellLink()
}

// tellLink, called with linkMu held, tells the queued notices to the
// link function, releasing linkMu for each call, and returns with it
// released. When another goroutine is telling already, it leaves them to
// it: the notices keep their order, and a function that calls back into
// the backend (SetLinkNotify) finds no lock held.
func (j *Joined) tellLink() {
	if j.linkTelling {
		j.linkMu.Unlock()
		return
	}
	j.linkTelling = true
	for len(j.linkQueue) > 0 && j.link != nil {
		up, notify := j.linkQueue[0], j.link
		j.linkQueue = j.linkQueue[1:]
		j.linkMu.Unlock()
		notify(up)
		j.linkMu.Lock()
	}
	j.linkQueue = nil
	j.linkTelling = false
	j.linkMu.Unlock()
}

// redial dials with backoff until the hub answers (the new connection,
// installed), Close or a refusal that dialing again cannot change (nil).
func (j *Joined) redial() net.Conn {
	delay := joinRetryMin
	var report redialReport
	noted := false // a lasting failure told to notef, once an outage
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-j.done:
			return nil
		case <-t.C:
		}
		c, addr, err := j.dial()
		select {
		case <-j.done: // the dial's failure is Close's doing: nothing to say
			if c != nil {
				c.Close()
			}
			return nil
		default:
		}
		if err == nil {
			j.mu.Lock()
			select {
			case <-j.done:
				j.mu.Unlock()
				c.Close()
				return nil
			default:
			}
			j.conn, j.addr, j.lastErr = c, addr, nil
			j.mu.Unlock()
			j.connects.Add(1)
			return c
		}
		j.failedDials.Add(1)
		if msg, ok := report.note(err); ok {
			j.logf("shared network %s: %s", j.name, msg)
		}
		if !noted && !permanentJoinError(err) && j.lastingJoinError(err) {
			noted = true
			j.notef("shared network %s: cannot rejoin: %v (%s); still trying", j.name, err, unreachableSocket)
		}
		j.mu.Lock()
		j.lastErr = err
		if permanentJoinError(err) {
			j.failErr = err
			close(j.failed)
			j.mu.Unlock()
			return nil
		}
		j.mu.Unlock()
		delay = min(2*delay, joinRetryMax)
		t.Reset(delay)
	}
}

// redialReport decides which failed redials a VM's log is told of: the
// first, and each whose error differs from the one before, not every
// attempt (a VM may retry for hours).
type redialReport struct{ last string }

// note is what to log of a failed redial's err, and whether to.
func (r *redialReport) note(err error) (string, bool) {
	if err.Error() == r.last {
		return "", false
	}
	r.last = err.Error()
	switch {
	case permanentJoinError(err):
		return fmt.Sprintf("cannot rejoin: %v; giving up", err), true
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		// Most often the VM's process lost access since it joined: it
		// changed its user or root directory, and the socket's mode or
		// path does not let the new ones through. Retried all the
		// same: the network's next start may set another mode.
		return fmt.Sprintf("cannot rejoin: %v (%s); still trying", err, unreachableSocket), true
	}
	return fmt.Sprintf("cannot rejoin: %v; still trying", err), true
}

// unreachableSocket is what a failed rejoin that will last most likely
// means.
const unreachableSocket = "this process, as its user and root directory are now, may not reach the socket"

// lastingJoinError reports whether a failed rejoin's err will not go away
// by itself, as a network being restarted does: a permission refused
// (the process changed its user or root directory since it joined), or
// what JoinOptions.Lasting says is.
func (j *Joined) lastingJoinError(err error) bool {
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, ErrForeignHub) {
		return true
	}
	return j.lasting != nil && j.lasting(err)
}

// ReadFrame implements Backend.
func (j *Joined) ReadFrame(buf []byte) (int, error) {
	n, err := j.toGuest.pop(buf)
	if err != nil {
		return 0, fmt.Errorf("shared network: read frame: %w", err)
	}
	return n, nil
}

// WriteFrame implements Backend. While the hub is away the frame is
// dropped and counted (Stats.Unsent), as on an unplugged cable. A hub
// that takes no frame for joinWriteTimeout is away: the connection is
// dropped (a frame written in part has broken the stream) and dialled
// again, so that WriteFrame never waits longer.
func (j *Joined) WriteFrame(frame []byte) error {
	if err := checkOutgoing(frame); err != nil {
		return fmt.Errorf("shared network: write frame: %w", err)
	}
	select {
	case <-j.done:
		return fmt.Errorf("shared network: write frame: %w", ErrClosed)
	default:
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.mu.Lock()
	c := j.conn
	j.mu.Unlock()
	if c == nil {
		j.unsent.Add(1)
		return nil
	}
	// Not under j.mu: Close must be able to end a write a stalled hub
	// holds up.
	b := net.Buffers{[]byte{byte(len(frame) >> 24), byte(len(frame) >> 16), byte(len(frame) >> 8), byte(len(frame))}, frame}
	_ = c.SetWriteDeadline(time.Now().Add(joinWriteTimeoutFor))
	if _, err := b.WriteTo(c); err != nil {
		select {
		case <-j.done:
			// Close half-closed c and waits for the hub to end it:
			// closed here, it would cut that wait short.
			j.unsent.Add(1)
			return nil
		default:
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("the network took no frame for %v (stopped or hung)", joinWriteTimeoutFor)
		}
		err = connError(err)
		// The reader sees the end too, and redials, reporting err: it is
		// set before the close the reader wakes to.
		j.mu.Lock()
		if j.conn == c {
			j.conn, j.lastErr, j.cut = nil, err, err
		}
		j.mu.Unlock()
		c.Close()
		j.unsent.Add(1)
		return nil
	}
	j.sent.Add(1)
	return nil
}

// Addr is the address the hub leased to the VM's MAC at the last
// connection.
func (j *Joined) Addr() netip.Addr {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.addr
}

// Connected reports whether the backend is connected now, and else the
// error that ended the last connection or attempt.
func (j *Joined) Connected() (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.conn != nil, j.lastErr
}

// Failed is closed when the backend has stopped reconnecting because the
// hub refused it for good (Err says why); it stays open otherwise, Close
// included.
func (j *Joined) Failed() <-chan struct{} { return j.failed }

// Err is the refusal that closed Failed (a *RefusedError or an error
// wrapping ErrHubProtocol), nil before.
func (j *Joined) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.failErr
}

// Connects counts successful handshakes: 1 after Join, one more per
// reconnection.
func (j *Joined) Connects() uint64 { return j.connects.Load() }

// Stats implements StatsReporter.
func (j *Joined) Stats() Stats {
	return Stats{ToGuest: j.toGuest.pushed.Load(), FromGuest: j.sent.Load(),
		Dropped: j.toGuest.dropped.Load(), Unsent: j.unsent.Load()}
}

// Close disconnects from the hub and stops reconnecting. It ends its
// side of the connection first and waits, up to joinCloseWait, for the
// hub to end its own, which the hub does once it has taken the VM out
// (its MAC, its forwards): a VM started next with the same MAC and
// forwards is then let in. Before, it could be refused as connected
// already. It then waits for the backend's goroutine to end, and so for
// a callback it is running (JoinOptions' Logf, Notef, Lasting; the link's
// notify) to return, except when called from that callback: it returns
// then without waiting for itself, and the goroutine ends as the
// callback returns.
func (j *Joined) Close() error {
	onRun := j.runID.Load() == goid.ID()
	j.closeOnce.Do(func() {
		close(j.done)
		j.stop()
		j.toGuest.close()
		j.mu.Lock()
		c := j.conn
		j.mu.Unlock()
		if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			if onRun {
				// run reads c no more until this returns: the
				// hub's end is awaited here instead.
				_ = c.SetReadDeadline(time.Now().Add(joinCloseWaitFor))
				_, _ = io.Copy(io.Discard, c)
			} else {
				t := time.NewTimer(joinCloseWaitFor)
				select {
				case <-j.runDone: // the hub's end came: run has closed c
				case <-t.C:
				}
				t.Stop()
			}
		}
		j.mu.Lock()
		if j.conn != nil {
			j.conn.Close()
		}
		j.mu.Unlock()
	})
	// Not in the Do: a callback's Close, while another goroutine's Close
	// waits here for run, must return (its Do's wait is bounded by
	// joinCloseWait); this wait is not.
	if !onRun {
		j.wg.Wait()
	}
	return nil
}
