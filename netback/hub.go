package netback

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/goid"
)

// Timeouts and sizes of a hub's connections.
const (
	// hubHandshakeTimeout bounds a hello and its answer.
	hubHandshakeTimeout = 5 * time.Second
	// hubRefuseTimeout bounds the hello of a VM refused for want of
	// descriptors: read while no other VM is accepted, and a VM writes
	// its hello as soon as it connects.
	hubRefuseTimeout = time.Second
	// hubPortDepth is the queue of frames towards one VM, in frames, as
	// a User's (userToGuestDepth): beyond it frames are dropped, so that
	// a VM that does not read cannot hold up the others.
	hubPortDepth = 4096
	// hubPortBytes bounds the same queue in bytes of buffers (each
	// frame takes a pooled buffer of smallFrame bytes, or tinyFrame for
	// a short one): 512 MTU-sized frames, or the whole depth of short
	// ones (an ACK burst), where 4096 of the former would hold 8 MiB for
	// a VM that does not read.
	hubPortBytes = 1 << 20
	// hubWriteTimeout is how long a VM's queue may drop every frame
	// switched to it (its connection takes none while frames keep
	// coming) before the hub drops the VM, as a VM drops a hub that takes
	// none for joinWriteTimeout: a VM process that stopped reading (hung)
	// holds no buffers and no address for good; it rejoins when it reads
	// again. One stopped while few frames come its way (a bench reading
	// its memory) is not dropped: its queue never fills.
	hubWriteTimeout = 5 * time.Second
	// hubGatewayDepth is the queue of frames towards the gateway; a full
	// one holds back the sending VM's connection, not the others.
	hubGatewayDepth = 1024
	// hubFloodRate is what one VM may make the hub flood to every other
	// VM, in bytes per second of broadcast and multicast frames, each
	// frame counting hubFloodFrameCost bytes more (a queue slot and a
	// wakeup per VM, whatever its size); hubFloodBurst is how much of it
	// may come at once. A VM's ARP, DHCP and neighbour discovery take a
	// few frames a second; a flood at this rate costs each other VM at
	// most about 1800 small frames a second.
	hubFloodRate      = 1 << 20
	hubFloodBurst     = 128 << 10
	hubFloodFrameCost = 512
	// hubIOBuffer is the size of each connection's read and write buffers.
	hubIOBuffer = 64 << 10
	// hubRejoinGrace is how long a hub that starts holds the leases of
	// the VMs that were connected when its lease file was last written
	// (a hub that died wrote no leave): they rejoin within a second or
	// so (joinRetryMax), and a MAC that needs one of their addresses
	// waits for it meanwhile, within its handshake's time.
	hubRejoinGrace = 3 * time.Second
	// hubNATGrace is how long the NAT connections of a VM that left are
	// kept for it to rejoin: one the hub dropped (its queue full for
	// hubWriteTimeout, as when its process was stopped) rejoins once it
	// reads again, one that dropped a stalled hub within a second or so.
	// A VM started again, or another at the address, ends them at once
	// (settleNAT), so waiting longer holds host sockets but no bound.
	hubNATGrace = 30 * time.Second
)

// hubRejoinGraceFor and hubNATGraceFor are hubRejoinGrace and
// hubNATGrace, variables for the tests.
var (
	hubRejoinGraceFor = hubRejoinGrace
	hubNATGraceFor    = hubNATGrace
)

// hubWriteTimeoutTest replaces hubWriteTimeout when not 0: a test's, set
// while a running hub may read it (atomic).
var hubWriteTimeoutTest atomic.Int64

// writeTimeout is hubWriteTimeout, or the test's.
func writeTimeout() time.Duration {
	if d := time.Duration(hubWriteTimeoutTest.Load()); d != 0 {
		return d
	}
	return hubWriteTimeout
}

// MaxSocketPath is the longest path a Unix socket address takes (sun_path
// less its terminating NUL): the longest Socket a hub listens on.
const MaxSocketPath = 107

// HubConfig configures NewHub.
type HubConfig struct {
	// Socket is the Unix socket VMs connect to (HubSocket names the
	// default one). Its directory must exist, unless it is the default
	// runtime directory (HubDir), which is created with its parent,
	// both mode 0711 and owned by this user (an existing one owned by
	// another user is refused; an existing one is never narrowed, but
	// loses group and world write access), so that each network's
	// socket says who may join it. The socket is mode 0600: only its
	// owner's VMs may join. Beside it the hub keeps a lock file,
	// Socket+".lock" (mode 0600, this user's: one of another user's is
	// refused), held while it starts.
	Socket string
	// Group, when above 0, is a group whose members' VMs may join too:
	// the socket is mode 0660 and owned by that group. Set on every
	// start, since the socket is made anew each time. A group id above
	// 4294967294 is refused: lchown(2) would leave the socket to
	// another group.
	Group int
	// Leases is the lease file; "" means HubLeases(Socket). The hub
	// holds a lock beside it (Leases+".lock") while it runs: another
	// hub given it fails with ErrLeasesInUse. One that is a symlink,
	// another user's or writable by others, or in a directory another
	// user (not root) owns or others may write without the sticky bit,
	// fails with ErrLeasesUnsafe.
	Leases string
	// Logf, when set, is told of VMs joining, being refused and leaving,
	// one line each, its control characters escaped (termsafe.Line). It
	// is called on the hub's goroutines, which Close waits for, and may
	// call Close: that Close returns at once, nil, and the hub stops
	// meanwhile.
	Logf func(format string, args ...any)
	// Contained is a hub whose process forbids itself, once NewHub has
	// returned, every system call that names a file (a seccomp filter
	// sees descriptors, never paths). Such a hub reads the host's hosts
	// file and resolv.conf itself at the start only, then through
	// ReadHostFiles (once, at the start, without it); reads the first
	// unprivileged port through a descriptor
	// opened at the start; removes its socket file at Close through
	// RemoveSocket (left without it: nothing listens on it then, and
	// the next hub replaces it); and writes the lease file through
	// WriteLeases, which must be set.
	Contained bool
	// RemoveSocket, for a contained hub, removes its socket file at
	// Close, as the hub itself does otherwise: only if Socket is still
	// the file SocketFile describes (another hub may have made its own
	// there since). A process that may name files does it for the hub.
	RemoveSocket func() error
	// WriteLeases, when set, replaces the lease file's content with a
	// table, instead of the hub's own write (a temporary file renamed
	// over it): a contained hub hands the table to what may rename
	// files. The hub still reads the file and holds its lock.
	WriteLeases func(table []byte) error
	// ReadHostFiles, for a contained hub, is how its DNS looks at the
	// host's hosts file and resolv.conf again, as a hub otherwise does
	// itself (ReadHostFiles, the package's): their stamps at most once a
	// second, when queries come, and their content when the stamps
	// changed. A process that may open files does it for the hub, and
	// gives with their content the interface index of each zone
	// resolv.conf's nameservers name (HostFiles.Zones): the hub finds
	// them there alone, as its filter refuses the netlink socket the
	// net package would ask; a nameserver whose zone is not there, nor
	// a number, is left out and logged. An error keeps the
	// configuration read last.
	ReadHostFiles func(content bool) (HostFiles, error)
}

// Hub is a user network that several VMs share: one gateway (the same
// addresses and services as User's: 10.0.2.2 routes to the host with NAT,
// 10.0.2.3 answers DNS, DHCP) and an Ethernet switch between it and every
// connected VM, so that VMs reach each other by address. Each VM connects
// to the hub's Unix socket (Join), says its MAC and its port forwards, and
// is answered with its address: the pool is 10.0.2.15 to 10.0.2.254, one
// address per MAC, kept in the lease file across restarts of the hub. The
// forwards listen on the host while the VM is connected.
//
// Every VM is hostile to the others and to the hub. The hub enforces, per
// connection: the handshake is bounded (size, forwards, time) and parsed
// strictly; a MAC joins once at a time (a second connection with it is
// refused, so no VM can take over another's port, address or forwards);
// a MAC's lease is the user's whose VM joined with it (SO_PEERCRED; the
// user root's process said its VM would run as), and a VM of another
// user but root and the hub's own user is refused it (RefusedMACOwner),
// since a VM picks its
// own MAC, even after its address went to another MAC when the pool ran
// out (a user's leases are kept without an address then, up to a bound
// that another user's new MACs cannot make them lose: leaseStore);
// a forward of a host port below the host's first unprivileged one
// (net.ipv4.ip_unprivileged_port_start, else 1024) is refused unless the
// process that connected (SO_PEERCRED) is root's, or is that of the user
// root's earlier join of that MAC with the forward said its VM would run
// as (a VM started as root drops to that user after joining; the grant is
// kept with the lease), since the hub binds it with its own privileges;
// the frames a VM sends (hubfilter.go) are at most MTU-sized, carry its
// MAC as source and, for IPv4 and ARP, its leased address as sender
// (another only in its DHCP requests to the gateway or broadcast, as one
// that rejoined at another address renews the old, which the gateway
// refuses; 0.0.0.0 in ARP probes of its own address),
// for IPv6 its MAC's link-local address (:: only in its duplicate address
// probes and multicast listener reports); neighbour discovery and DHCP
// speak for the VM only (no router advertisement or redirect, no DHCP or
// DHCPv6 server's reply, no request naming another MAC); VLAN-tagged frames are
// dropped. The gateway's DHCP replies go to their client only. Frames
// are dropped, never waited for, towards a VM whose queue is full
// (hubPortDepth frames, hubPortBytes bytes of buffers), and a VM whose
// queue drops every frame for hubWriteTimeout is dropped (it rejoins). What
// one VM makes the hub copy to every other is bounded: its broadcast and
// multicast frames reach the other VMs within a token bucket
// (hubFloodRate; beyond it they reach the gateway only, and are
// counted), and unicast to an unknown MAC is dropped, not flooded.
type Hub struct {
	socket string
	ln     *net.UnixListener
	// socketFile is the socket file listenSocket made, which Close
	// removes only if still at socket.
	socketFile os.FileInfo
	gw         *gateway
	leases     *leaseStore
	logf       func(format string, args ...any)

	now func() time.Time // the clock of leases' last-seen times and flood limits
	// peerUID and portStart decide who may forward privileged host
	// ports (checkPrivileged).
	peerUID   func(c net.Conn) (int, error)
	portStart func() int
	// self is the hub's own user: its VMs, as root's, are not held to
	// userLimit.
	self int
	// handshakeTimeout bounds a hello and its answer: hubHandshakeTimeout
	// unless hubHooks says otherwise.
	handshakeTimeout time.Duration
	// contained is HubConfig.Contained, removeSocket its RemoveSocket;
	// nofile the process's RLIMIT_NOFILE as NewHub found it
	// (refuseNoDescriptors).
	contained    bool
	removeSocket func() error
	nofile       uint64
	mu           sync.RWMutex
	ports        map[[6]byte]*hubPort
	// admitMu serialises admissions (register).
	admitMu sync.Mutex
	// natEnds are the NAT relays of VMs that left, by address, ended
	// after natGrace (hubNATGrace; endNATLater) unless the same VM rejoins at
	// that address meanwhile (settleNAT): a VM that drops its connection
	// and rejoins keeps its TCP connections.
	natMu    sync.Mutex
	natEnds  map[netip.Addr]*natEnd
	natGrace time.Duration
	conns    connSet // every open connection, handshaking or joined
	// pending counts the connections whose handshake is not over, by
	// user, within pendingLimits (admitPending).
	pending pendingSet
	// The lines a flood of connections would make, each kind within
	// its bounds: handshakes that fail, refusals, connections refused
	// over pendingLimits.
	handshakeLog, refuseLog, busyLog logLimit

	wg sync.WaitGroup
	// logging holds the goroutines calling HubConfig.Logf, whose Close
	// cannot wait for the hub's goroutines (their own among them).
	logging goid.Set
	// closeStarted is set by the first Close; closed is closed once its
	// work is done, and closeErr set.
	closeStarted atomic.Bool
	closed       chan struct{}
	closeErr     error
	closing      chan struct{} // closed as Close begins

	// changed holds a token after a VM joined or left or the leases
	// were saved, until Changed's receiver takes it: changes made
	// meanwhile are coalesced into it.
	changed chan struct{}

	switched, dropped, spoofed, limited atomic.Uint64
	fwd                                 forwardCounts // every VM's forwards

	// The lease file is written by one goroutine (saveLoop), not on the
	// path of a join: a VM is answered once its address is reserved in
	// memory, and an fsync on a slow disk holds up no join. saveReq holds
	// at most one request: changes made while a save runs are coalesced
	// into the next one. Close saves a final time.
	saveReq       chan struct{}
	saveDone      chan struct{}
	saveLeaseFile func() error // h.leases.save; a seam for the tests
}

// HubStats counts what a hub did.
type HubStats struct {
	// VMs is the number of VMs connected now.
	VMs int
	// Switched counts frames delivered to a VM or the gateway.
	Switched uint64
	// Dropped counts frames dropped for an unknown destination or a full
	// queue.
	Dropped uint64
	// Spoofed counts frames a VM sent that the hub's filter dropped:
	// not sent as that VM (its MAC, its addresses, no DHCP server's or
	// router's messages) or longer than the MTU.
	Spoofed uint64
	// Limited counts broadcast and multicast frames from a VM beyond its
	// flood limit: the gateway got them, the other VMs did not.
	Limited uint64
	// GatewayStats are the counters of the network's gateway, for all
	// its VMs.
	GatewayStats
}

// NewHub starts a shared network listening on cfg.Socket. A socket file
// left by a hub that died (a dial of it refused) is replaced; one that a
// running hub answers on is an error wrapping ErrHubRunning; one whose
// dial fails otherwise (EACCES, EAGAIN) is left, and an error wrapping
// the dial's. Hubs starting together on one socket take turns
// (lockSocket).
func NewHub(cfg HubConfig) (*Hub, error) { return newHub(cfg, hubHooks{}) }

// hubHooks are what the tests replace in a hub; a zero field is the real
// one.
type hubHooks struct {
	// now is the clock of the leases' last-seen times and the flood
	// limits.
	now func() time.Time
	// wrapSave, if not nil, makes the lease file writes through it.
	wrapSave func(save func() error) error
	// peerUID is the user of the process at the other end of a VM's
	// connection (SO_PEERCRED).
	peerUID func(c net.Conn) (int, error)
	// portStart is the first host port that a process other than root
	// may bind.
	portStart func() int
	// bound, if not nil, is called with the path the socket was bound
	// at, before its access is set.
	bound func(path string)
	// self, if not nil, is the hub's own user rather than its euid.
	self func() int
	// nofile, if not nil, is the descriptor limit the NAT's budget is
	// sized from (newNATBudget) rather than RLIMIT_NOFILE.
	nofile func() uint64
	// handshakeTimeout, if not zero, bounds a hello and its answer
	// rather than hubHandshakeTimeout.
	handshakeTimeout time.Duration
}

// fileLimit is the process's RLIMIT_NOFILE, as Go raised it at its start
// (to the hard limit); 1024, the usual soft limit, when it cannot be
// read.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 1024
	}
	return lim.Cur
}

// newHub is NewHub with hooks.
func newHub(cfg HubConfig, hooks hubHooks) (*Hub, error) {
	now, wrapSave := hooks.now, hooks.wrapSave
	if now == nil {
		now = time.Now
	}
	if cfg.Socket == "" {
		return nil, fmt.Errorf("shared network: no socket path")
	}
	if len(cfg.Socket) > MaxSocketPath {
		return nil, fmt.Errorf("shared network: socket path %s is %d bytes long; a Unix socket's path has at most %d", cfg.Socket, len(cfg.Socket), MaxSocketPath)
	}
	if cfg.Leases == "" {
		cfg.Leases = HubLeases(cfg.Socket)
	}
	h := &Hub{socket: cfg.Socket, logf: cfg.Logf, now: now, ports: map[[6]byte]*hubPort{}, natEnds: map[netip.Addr]*natEnd{}, natGrace: hubNATGraceFor,
		saveReq: make(chan struct{}, 1), saveDone: make(chan struct{}), changed: make(chan struct{}, 1),
		closing: make(chan struct{}), closed: make(chan struct{}),
		peerUID: hooks.peerUID, portStart: hooks.portStart, self: os.Geteuid(), handshakeTimeout: hubHandshakeTimeout}
	if hooks.handshakeTimeout != 0 {
		h.handshakeTimeout = hooks.handshakeTimeout
	}
	if h.peerUID == nil {
		h.peerUID = connPeerUID
	}
	if hooks.self != nil {
		h.self = hooks.self()
	}
	if h.portStart == nil {
		h.portStart = unprivilegedPortStart
		if cfg.Contained {
			h.portStart = heldPortStart()
		}
	}
	if cfg.Contained && cfg.WriteLeases == nil {
		return nil, fmt.Errorf("shared network: contained, but no writer of the lease file")
	}
	h.contained, h.removeSocket, h.nofile = cfg.Contained, cfg.RemoveSocket, fileLimit()
	if h.logf == nil {
		h.logf = func(string, ...any) {}
	} else {
		// A line may carry a VM's text (its hello's MAC and forwards):
		// escaped, it cannot forge a line of the hub's or act on the
		// terminal of whoever reads the log.
		logf := inertf(cfg.Logf)
		h.logf = func(format string, args ...any) {
			defer h.logging.Enter()()
			logf(format, args...)
		}
	}
	if err := prepareSocketDir(filepath.Dir(cfg.Socket)); err != nil {
		return nil, err
	}
	// Under the socket's lock, so that no other hub's start removes
	// this one's socket as stale between the check and the listen.
	unlock, err := lockSocket(cfg.Socket)
	if err != nil {
		return nil, err
	}
	err = removeStaleSocket(cfg.Socket)
	if err == nil {
		h.ln, h.socketFile, err = listenSocket(cfg.Socket, cfg.Group, hooks.bound)
	}
	unlock()
	if err != nil {
		return nil, err
	}
	// Once the socket is this hub's, so that a network running on it is
	// said as such (ErrHubRunning) rather than by its lease file's lock;
	// no VM is accepted before the leases are read. After
	// prepareSocketDir too: the default lease file is in the socket's
	// directory, which it may have made.
	if h.leases, err = loadLeases(cfg.Leases); err != nil {
		err = fmt.Errorf("shared network: %w", err)
		return nil, errors.Join(err, h.unlisten())
	}
	h.leases.holdConnected(h.now().Add(hubRejoinGraceFor))
	h.leases.write = cfg.WriteLeases
	h.saveLeaseFile = h.leases.save
	if wrapSave != nil {
		h.saveLeaseFile = func() error { return wrapSave(h.leases.save) }
	}
	if h.gw, err = newGateway(hubGatewaySink{h}, hubGatewayDepth, false); err != nil {
		h.leases.close()
		return nil, errors.Join(err, h.unlisten())
	}
	if cfg.Contained {
		h.gw.resolver.read = cfg.ReadHostFiles // open would be refused
	}
	if cfg.Logf != nil {
		h.gw.resolver.setLog(h.logf)
	}
	if err := h.gw.serveDHCP(h.leases.lookup); err != nil {
		_ = h.gw.close()
		h.leases.close()
		return nil, errors.Join(err, h.unlisten())
	}
	nofile := hooks.nofile
	if nofile == nil {
		nofile = fileLimit
	}
	// Before the gateway starts: no relay is admitted before.
	h.gw.nat.budget = newNATBudget(nofile())
	h.gw.nat.userOf = h.natUserOf
	h.gw.nat.logf = h.logf
	h.gw.start()
	go h.saveLoop()
	h.wg.Add(1)
	go h.accept(openSpare())
	return h, nil
}

// removeStaleSocket removes path if it is a socket nobody listens on any
// more (staleSocket).
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("shared network: %w", err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("shared network: %s exists and is not a socket", path)
	}
	if err = probeSocket(path); err == nil {
		return fmt.Errorf("shared network: %s: %w", path, ErrHubRunning)
	}
	if stale, err := staleSocket(path, err); !stale {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("shared network: stale socket: %w", err)
	}
	return nil
}

// probeSocket connects to the socket file path and closes the connection
// at once: nil if a listener took it, else the dial's error, for
// staleSocket. Without a deadline: a Unix socket's connect never waits
// (Linux queues the connection, or says at once ECONNREFUSED, nobody
// listens, or EAGAIN, the queue is full), so a deadline only expired on a
// prober slowed past it. On a loaded host a dial that had connected to a
// live hub then said "i/o timeout" (1 s), and a hub starting beside it
// said it could not tell whether a network ran there, not ErrHubRunning.
func probeSocket(path string) error {
	var d net.Dialer
	c, err := d.Dial("unix", path)
	if err != nil {
		return err
	}
	_ = c.Close()
	return nil
}

// staleSocket says, from dialErr, the failure of a dial of socket file
// path, whether the file is stale: refused (ECONNREFUSED), no process
// listens on it. Any other failure says nothing of that, and is err: a
// hub may be listening that this process may not reach (EACCES: another
// user's, in a directory open to all), or that is too busy to take a
// connection now (EAGAIN: its queue full). Before, any of
// them had its live socket removed. A file gone meanwhile (ENOENT) is not
// stale, nor an error: there is nothing to remove.
func staleSocket(path string, dialErr error) (stale bool, err error) {
	switch {
	case errors.Is(dialErr, syscall.ECONNREFUSED):
		return true, nil
	case errors.Is(dialErr, syscall.ENOENT):
		return false, nil
	}
	return false, fmt.Errorf("shared network: %s: cannot tell whether a network listens on it, so it is left: %w", path, dialErr)
}

// unlisten removes the hub's socket and closes its listener, for a hub
// that fails to start after listenSocket.
func (h *Hub) unlisten() error {
	return errors.Join(removeSocket(h.socket, h.socketFile), h.ln.Close())
}

// Socket is the path VMs connect to.
func (h *Hub) Socket() string { return h.socket }

// SocketFile describes the socket file NewHub made at Socket, as it was
// bound: what HubConfig.RemoveSocket compares Socket with at Close.
func (h *Hub) SocketFile() os.FileInfo { return h.socketFile }

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	h.mu.RLock()
	n := len(h.ports)
	h.mu.RUnlock()
	return HubStats{VMs: n, Switched: h.switched.Load(), Dropped: h.dropped.Load(), Spoofed: h.spoofed.Load(), Limited: h.limited.Load(),
		GatewayStats: h.gw.stats(&h.fwd)}
}

// Changed receives after VMs joined or left, and after the lease file
// such a change asked for was written (the last of a join's work): one
// token for all that happened since the last one was received (none when
// nothing did, so a receiver waits without polling). Stats says how many
// VMs are joined.
func (h *Hub) Changed() <-chan struct{} { return h.changed }

// noteChange puts a token in h.changed unless one is there already.
func (h *Hub) noteChange() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// Close stops accepting, disconnects every VM (removing their forwards)
// and stops the gateway, waiting for every goroutine. The socket file is
// removed (a contained hub's through HubConfig.RemoveSocket, if set).
// Called from HubConfig.Logf, on one of the goroutines it would
// wait for, it returns at once, nil, while the hub stops; a Close from
// elsewhere waits for that and returns its error.
func (h *Hub) Close() error {
	inLog := h.logging.HoldsCaller()
	// Not a sync.Once: a Close from Logf while another's is under way
	// (or from that Close's own log lines) must not wait for it.
	if h.closeStarted.CompareAndSwap(false, true) {
		if inLog {
			go h.shutdown()
		} else {
			h.shutdown()
		}
	}
	if inLog {
		return nil
	}
	<-h.closed
	return h.closeErr
}

// shutdown is Close's work, done once.
func (h *Hub) shutdown() {
	defer close(h.closed)
	close(h.closing)
	// Linked into place, the socket file is not the path the
	// listener knows to remove. Removed first: a VM dialling
	// meanwhile finds nothing, not a socket that refuses it.
	var err error
	switch {
	case !h.contained:
		err = removeSocket(h.socket, h.socketFile)
	case h.removeSocket != nil: // its own stat and unlink would be refused
		if err = h.removeSocket(); err != nil {
			err = fmt.Errorf("shared network: remove %s: %w", h.socket, err)
		}
	}
	err = errors.Join(err, h.ln.Close())
	h.conns.closeAll()
	h.wg.Wait()
	h.stopNATEnds()
	// No VM is left to ask for a save: the last one has every
	// change, the last-seen times of the VMs that just left too.
	close(h.saveReq)
	<-h.saveDone
	h.saveLeases()
	h.leases.close()
	h.closeErr = errors.Join(err, h.gw.close())
}

// accept serves connections until Close. Out of descriptors, it takes
// each VM that connects with the one it keeps spare (opened before the
// hub returns, not when this goroutine first runs) and, if it has still
// none left, answers it why it cannot take it (RefusedNoDescriptors)
// rather than leave it to time out in the queue. It logs the first
// failure, a line a minute while they last, and how many VMs were refused
// once it accepts again: not each failure (it logged 20 a second).
func (h *Hub) accept(spare *os.File) {
	defer h.wg.Done()
	defer func() {
		if spare != nil {
			spare.Close()
		}
	}()
	var failing bool
	var refused uint64
	var since, logged time.Time
	fail := func(err error) {
		switch {
		case !failing:
			failing, since, logged = true, time.Now(), time.Now()
			h.logf("accept: %v; VMs that connect meanwhile are refused (logged once a minute while it lasts)", err)
		case time.Since(logged) >= time.Minute:
			logged = time.Now()
			h.logf("accept: %v, since %s; %d VMs refused", err, since.Format(time.TimeOnly), refused)
		}
	}
	for {
		c, err := h.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			fail(err)
			if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) || spare == nil {
				// Retried, and the spare too: the VMs joined go on.
				time.Sleep(50 * time.Millisecond)
				if spare == nil {
					spare = openSpare()
				}
				continue
			}
			// Waits, with a descriptor free, for the next VM: accept4
			// fails without one even when none is waiting.
			spare.Close()
			c, err = h.ln.Accept()
			spare = openSpare()
			if err != nil {
				continue
			}
			if spare == nil {
				h.refuseNoDescriptors(c)
				refused++
				spare = openSpare()
				continue
			}
			// Descriptors were freed meanwhile: c joins.
		}
		if failing {
			h.logf("accept works again, since a failure at %s; %d VMs were refused for want of descriptors", since.Format(time.TimeOnly), refused)
			failing, refused = false, 0
		}
		uid, ok := h.admitPending(c)
		if !ok {
			continue
		}
		if !h.conns.add(c) {
			h.pending.done(uid)
			_ = c.Close()
			return
		}
		h.wg.Add(1)
		go h.serve(c, uid)
	}
}

// openSpare opens the descriptor the hub keeps to answer VMs with when
// it has none left; nil if it cannot. An eventfd: it names no file, which
// a contained hub could not open.
func openSpare() *os.File {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), "spare")
}

// heldPortStart is unprivilegedPortStart read through a descriptor
// opened now, for a contained hub: a sysctl file read again from offset
// 0 gives its value then. Where it cannot be opened, the value is 1024.
func heldPortStart() func() int {
	f, err := os.Open(unprivilegedPortStartFile)
	if err != nil {
		return func() int { return 1024 }
	}
	return func() int {
		var b [32]byte
		n, err := f.ReadAt(b[:], 0)
		if n > 0 {
			err = nil // io.EOF: the whole value, shorter than b
		}
		return portStartOf(b[:n], err)
	}
}

// refuseNoDescriptors reads the hello of a VM the hub accepted on its
// spare descriptor and refuses it, saying why, then closes it. Read
// first: a VM that had not written it yet would find the connection
// closed, not the answer.
func (h *Hub) refuseNoDescriptors(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hubRefuseTimeout))
	var hello hubHello
	if _, _, err := readHubMessage(c, &hello); err != nil {
		return
	}
	limit := "its limit"
	if h.nofile != 0 { // read at the start: prlimit64 may be refused now
		limit = fmt.Sprintf("RLIMIT_NOFILE %d", h.nofile)
	}
	msg := fmt.Sprintf("the network's process has every file descriptor open that %s allows (%d VMs joined)", limit, h.Stats().VMs)
	_ = writeHubMessage(c, byte(RefusedNoDescriptors), hubAnswer{Error: msg})
}

// serve runs one VM's connection, counted as pending for uid until its
// handshake is over: handshake, then its frames until either side
// closes.
func (h *Hub) serve(c net.Conn, uid int) {
	defer h.wg.Done()
	defer h.conns.remove(c)
	handshaken := sync.OnceFunc(func() { h.pending.done(uid) })
	defer handshaken()
	_ = c.SetDeadline(time.Now().Add(h.handshakeTimeout))
	var hello hubHello
	ver, _, err := readHubMessage(c, &hello)
	if err != nil {
		// A connection closed before its first byte is a probe
		// (HubPID, another hub checking for a live one), not a VM;
		// one the hub's Close closed is no VM's fault either.
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			h.handshakeLog.logf(h.logf, "handshake: %v", err)
		}
		return
	}
	refuse := func(r Refusal, msg string) {
		h.refuseLog.logf(h.logf, "refused a VM: %s: %s", r, msg)
		_ = writeHubMessage(c, byte(r), hubAnswer{Error: msg})
	}
	if ver != hubVersion {
		refuse(RefusedVersion, fmt.Sprintf("this network speaks version %d, the VM %d", hubVersion, ver))
		return
	}
	if hello.Query != "" {
		h.answerQuery(c, hello, refuse)
		return
	}
	p, r, msg := h.admit(c, hello)
	if r != 0 {
		refuse(r, msg)
		return
	}
	defer p.close()
	if err := writeHubMessage(c, 0, hubAnswer{Addr: p.addr.String()}); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	handshaken()
	h.logf("VM %s joined as %s%s", p.mac, p.addr, forwardList(p.forwards))
	h.wg.Add(1)
	go p.writeLoop()
	h.logf("VM %s (%s) left: %s", p.mac, p.addr, p.leaveCause(p.readLoop()))
}

// leaveCause says why the VM left, its read having failed with err: the
// hub's own reason when it ended the connection (cause, or its Close),
// else err without the connection's addresses (connError).
func (p *hubPort) leaveCause(err error) string {
	if c, ok := p.cause.Load().(string); ok {
		return c
	}
	select {
	case <-p.h.closing:
		return "network stopping"
	default:
	}
	if errors.Is(err, io.EOF) {
		return "it closed its connection"
	}
	return fmt.Sprint(connError(err))
}

// answerQuery answers a hello that asks rather than joins.
func (h *Hub) answerQuery(c net.Conn, hello hubHello, refuse func(Refusal, string)) {
	if hello.Query != hubQueryVMs || hello.MAC != "" || len(hello.Forwards) > 0 || hello.RunsAs != 0 {
		refuse(RefusedMalformed, fmt.Sprintf("query %q with MAC %q, %d forwards and runs_as %d: the only query is %q, alone", hello.Query, hello.MAC, len(hello.Forwards), hello.RunsAs, hubQueryVMs))
		return
	}
	n := h.Stats().VMs
	_ = writeHubMessage(c, 0, hubAnswer{VMs: &n})
}

func forwardList(fs []Forward) string {
	if len(fs) == 0 {
		return ""
	}
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.String()
	}
	return " with forwards " + strings.Join(s, ", ")
}

// admit checks a hello and registers its VM: its forwards, its MAC in
// the switch and its lease. A refusal has a nonzero Refusal and why, and
// leaves nothing behind: no forward, no port, the lease table as it was.
func (h *Hub) admit(c net.Conn, hello hubHello) (*hubPort, Refusal, string) {
	mac, fwds, err := parseHello(hello)
	if err != nil {
		return nil, RefusedMalformed, err.Error()
	}
	// Else the second bind would fail as if another program held the
	// port, and the VM be told to stop it.
	if err := CheckForwards(fwds); err != nil {
		return nil, RefusedForward, err.Error()
	}
	peer := h.peer(c, hello)
	root, msg := h.checkPrivileged(peer, mac, fwds)
	if msg != "" {
		return nil, RefusedForward, msg
	}
	p, r, msg, wait := h.register(c, peer, mac, fwds, hello.Rejoin)
	for wait > 0 {
		// Every address left is held for a VM that was connected
		// before the hub restarted; it may rejoin meanwhile.
		select {
		case <-time.After(wait):
		case <-h.closing:
		}
		p, r, msg, wait = h.register(c, peer, mac, fwds, hello.Rejoin)
	}
	if r == 0 {
		if len(root) > 0 {
			// root is a root process's: its word on the user its VM
			// will run as is believed (any other's is ignored, as it
			// would grant itself nothing it lacks).
			h.leases.grant(mac, root, hello.RunsAs)
		}
		// The address is reserved in memory: the VM need not wait for
		// the disk. Should the hub die before the save, the VM asks
		// again for its MAC and gets a free address; after the save,
		// its lease is held for it as connected (hubRejoinGrace).
		h.requestSave()
	}
	return p, r, msg
}

// peerUser is the user of a VM's process, as the hub knows it.
type peerUser struct {
	uid int   // -1 when err
	err error // why the user cannot be read
	// owner is the user a lease of the VM's MAC is recorded as
	// (storedLease.UID): uid, or, for root's process, the user its VM
	// will run as (hubHello.RunsAs) when it said one; -1 when unknown.
	owner int
}

// peer reads the user of c's process (SO_PEERCRED).
func (h *Hub) peer(c net.Conn, hello hubHello) peerUser {
	uid, err := h.peerUID(c)
	if err != nil {
		return peerUser{uid: -1, err: err, owner: -1}
	}
	owner := uid
	if uid == 0 && hello.RunsAs != 0 {
		// root's word is believed, as for its grants (admit).
		owner = hello.RunsAs
	}
	return peerUser{uid: uid, owner: owner}
}

// checkPrivileged says why a VM may not have fwds ("" if it may): the hub
// binds its forwards' host ports with its own privileges, often root's,
// so a forward to a port below the host's first unprivileged one
// (net.ipv4.ip_unprivileged_port_start) is let through only if the
// process that connected is root's, as the kernel would have judged that
// process's own bind, or if root's earlier join of the same MAC with that
// forward said its VM would then run as the connecting process's user
// (leaseStore.grant): a VM that dropped root after its first join
// (to run as a user) rejoins after a restart of the network as its user, and would
// be refused for good. The grant is bound to that user, not to the MAC
// alone, since a VM chooses its own MAC: another user allowed on the
// socket could take the MAC while root's VM is away. A user that cannot
// be read counts as unprivileged and is granted nothing. root are the
// privileged forwards of a root peer, for admit to grant.
func (h *Hub) checkPrivileged(peer peerUser, mac net.HardwareAddr, fwds []Forward) (root []string, msg string) {
	// The first unprivileged port is read once, and only if there is a
	// forward to judge.
	start := -1
	uid, uidErr := peer.uid, peer.err
	for _, f := range fwds {
		if start < 0 {
			start = h.portStart()
		}
		if int(f.HostPort) >= start {
			continue
		}
		if uidErr == nil && uid == 0 {
			root = append(root, f.String())
			continue
		}
		if uidErr == nil && h.leases.granted(mac, f.String(), uid) {
			continue
		}
		who := fmt.Sprintf("the VM's process runs as uid %d", uid)
		if h.leases.hasGrant(mac) {
			// Only then is there a join of root's to speak of.
			who += fmt.Sprintf(", and root's VM of MAC %s did not join with it to run as that uid", mac)
		}
		if uidErr != nil {
			who = fmt.Sprintf("the VM's user is unknown (%v)", uidErr)
		}
		return nil, fmt.Sprintf("%s: host port %d is below %d (net.ipv4.ip_unprivileged_port_start): only root's VMs may forward it, and %s; forward a host port from %d up", f, f.HostPort, start, who, start)
	}
	return root, ""
}

// register is admit's part that takes the address, binds the forwards
// and puts the port in the switch, one VM at a time: between plan and
// commit no other VM takes the planned address or registers the MAC, and
// the forwards are bound in between without holding up the switch. A
// wait above 0 says to try again after it: the only addresses left are
// held (leaseStore.holdConnected). rejoin is the hello's: the VM lost
// its connection and is back.
func (h *Hub) register(c net.Conn, peer peerUser, mac net.HardwareAddr, fwds []Forward, rejoin bool) (*hubPort, Refusal, string, time.Duration) {
	var key [6]byte
	copy(key[:], mac)
	h.admitMu.Lock()
	defer h.admitMu.Unlock()
	owner, leased, recorded := h.leases.owner(mac)
	h.mu.RLock()
	dup := h.ports[key] != nil
	now := h.now()
	plan, ok := h.leases.plan(mac, h.connectedLocked, now)
	taken := h.takenLocked(key, fwds)
	n := h.connectedOfLocked(peer)
	h.mu.RUnlock()
	plan.uid = peer.owner
	whose := fmt.Sprintf("is leased (%s) to the VMs of uid %d", leased, owner)
	if !leased.IsValid() {
		whose = fmt.Sprintf("belongs to the VMs of uid %d (its address went to another MAC when the pool ran out)", owner)
	}
	switch {
	case h.conns.isClosed():
		return nil, RefusedClosing, "the network is shutting down", 0
	case recorded && peer.err != nil:
		return nil, RefusedMACOwner, fmt.Sprintf("MAC %s %s, and the VM's user is unknown (%v): only that user's VMs and root's may join with it", mac, whose, peer.err), 0
	case recorded && peer.uid != 0 && peer.uid != h.self && peer.uid != owner:
		// A VM picks its own MAC: else another user allowed on the
		// socket would take this one's address while it is away, and
		// then have it refused as connected already. The network's
		// own user may, as root may: else a member of its group who
		// joined with the MAC of the owner's VM (a default MAC is
		// derived from the disk's path, which anybody may know)
		// would lock the owner out of its own network for good.
		may := "that user's VMs and root's"
		if h.self != 0 {
			may = fmt.Sprintf("that user's VMs, root's and the network's own user's (uid %d)", h.self)
		}
		return nil, RefusedMACOwner, fmt.Sprintf("MAC %s %s, and the VM's process runs as uid %d: only %s may join with it", mac, whose, peer.uid, may), 0
	case dup:
		return nil, RefusedDuplicateMAC, fmt.Sprintf("a VM with MAC %s is connected already", mac), 0
	case n >= userLimit():
		who := fmt.Sprintf("uid %d has", peer.owner)
		if peer.err != nil {
			who = fmt.Sprintf("users unknown (%v) have", peer.err)
		}
		return nil, RefusedUserLimit, fmt.Sprintf("%s %d VMs connected, the most one user's VMs may have at once (half of the network's %d addresses, so that no user takes them all; root's, but those it runs as another user, and the network's own user's are not limited)", who, n, poolSize()), 0
	case !ok && !plan.wait.IsZero():
		return nil, 0, "", max(plan.wait.Sub(now), time.Millisecond)
	case !ok:
		return nil, RefusedNoAddress, fmt.Sprintf("every address from %s to %s is leased to a connected VM", leasePool[0], leasePool[1]), 0
	case taken != "":
		// Said before the bind, which would blame another program.
		return nil, RefusedForward, taken, 0
	}
	p := &hubPort{h: h, conn: c, mac: mac, key: key, uid: peer.owner, addr: plan.addr, ll: linkLocal(key), forwards: fwds, out: newBoundedFrameQueue(hubPortDepth, hubPortBytes)}
	for _, f := range fwds {
		stop, err := h.gw.forward(f, plan.addr, forwardLimits{vm: &p.fwd, all: &h.fwd})
		if err != nil {
			p.stopForwards()
			return nil, RefusedForward, err.Error(), 0
		}
		p.stops = append(p.stops, stop)
	}
	if recorded && peer.err == nil && peer.uid != 0 && peer.uid == h.self && owner != peer.owner {
		h.logf("VM %s of uid %d, the network's own user, takes the MAC's lease from uid %d", mac, peer.uid, owner)
	}
	h.mu.Lock()
	h.ports[key] = p
	h.leases.commit(plan, h.now())
	h.mu.Unlock()
	// Before the VM is answered, so before it sends through the NAT.
	h.settleNAT(key, plan.addr, rejoin)
	h.noteChange()
	return p, 0, "", 0
}

// userLimit is how many VMs one user may have connected at once: half
// the pool, so that one user's VMs (or one process opening handshakes
// with made-up MACs) cannot take every address from the others.
func userLimit() int { return poolSize() / 2 }

// connectedOfLocked is how many VMs of peer's owner are connected, 0 for
// root and the hub's own user, whom userLimit does not bound. A VM counts
// as its owner's, not its process's: root's VM run as another user
// rejoins as that user's process once the network restarts, and counted
// as root's until then, the VMs over the limit stayed offline. A VM
// whose user is unknown counts with the others unknown. Under h.mu.
func (h *Hub) connectedOfLocked(peer peerUser) int {
	if peer.err == nil && (peer.owner == 0 || peer.owner == h.self) {
		return 0
	}
	n := 0
	for _, p := range h.ports {
		if p.uid == peer.owner {
			n++
		}
	}
	return n
}

// natUserOf is whose the VM at addr is, for the NAT's budget: its owner,
// exempt when userLimit does not bound it (connectedOfLocked); unknown
// for an address no VM has. Called under the NAT's lock: it takes h.mu
// to read, and nothing holding h.mu waits on the NAT.
func (h *Hub) natUserOf(addr netip.Addr) natUser {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, p := range h.ports {
		if p.addr == addr {
			return natUser{uid: p.uid, exempt: p.uid == 0 || p.uid == h.self}
		}
	}
	return natUser{uid: -1}
}

// natEnd is the pending end of the NAT relays of a VM that left.
type natEnd struct {
	key [6]byte // the VM's MAC
	t   *time.Timer
}

// endNATLater ends the NAT relays at addr, the address of the VM key that
// left, after natGrace, unless settleNAT comes first.
func (h *Hub) endNATLater(key [6]byte, addr netip.Addr) {
	e := &natEnd{key: key}
	h.natMu.Lock()
	defer h.natMu.Unlock()
	if old := h.natEnds[addr]; old != nil {
		old.t.Stop() // e ends the relays at addr, old's too
	}
	e.t = time.AfterFunc(h.natGrace, func() {
		h.natMu.Lock()
		mine := h.natEnds[addr] == e
		if mine {
			delete(h.natEnds, addr)
		}
		h.natMu.Unlock()
		if mine {
			h.gw.nat.endGuest(addr)
		}
	})
	h.natEnds[addr] = e
}

// settleNAT decides the pending end of the NAT relays at addr, where the
// VM key has just joined: kept when it is the VM that left them and it
// rejoins (its hello says so: one started again has lost its
// connections), ended now otherwise, so that the new VM has its own
// bounds and no other VM's connections.
func (h *Hub) settleNAT(key [6]byte, addr netip.Addr, rejoin bool) {
	h.natMu.Lock()
	e := h.natEnds[addr]
	if e != nil {
		delete(h.natEnds, addr)
		e.t.Stop()
	}
	h.natMu.Unlock()
	if e != nil && (e.key != key || !rejoin) {
		h.gw.nat.endGuest(addr)
	}
}

// stopNATEnds drops the pending ends: the gateway's close ends every
// relay.
func (h *Hub) stopNATEnds() {
	h.natMu.Lock()
	defer h.natMu.Unlock()
	for addr, e := range h.natEnds {
		e.t.Stop()
		delete(h.natEnds, addr)
	}
}

// saveLeases writes the lease file. A failure is logged: the leases hold
// until this hub stops.
func (h *Hub) saveLeases() {
	if err := h.saveLeaseFile(); err != nil {
		h.logf("%v", err)
	}
}

// requestSave asks saveLoop for a save of the leases as they will be
// then; a request already waiting covers this one. Not after Close's
// h.wg.Wait (every caller is one of h.wg's goroutines).
func (h *Hub) requestSave() {
	select {
	case h.saveReq <- struct{}{}:
	default:
	}
}

// saveLoop saves the leases on request until Close.
func (h *Hub) saveLoop() {
	defer close(h.saveDone)
	for range h.saveReq {
		h.saveLeases()
		// The save is a join's or a leave's last work: Changed's
		// receiver waits for it too.
		h.noteChange()
	}
}

// takenLocked says which of fwds another connected VM than key's
// forwards a host port of (SameHostPort), naming that VM; "" when none
// does. A VM that is leaving has its forwards stopped or stopping, and
// does not count. h.mu is held.
func (h *Hub) takenLocked(key [6]byte, fwds []Forward) string {
	for k, p := range h.ports {
		if k == key || p.leaving.Load() {
			continue
		}
		for _, f := range fwds {
			for _, g := range p.forwards {
				if SameHostPort(f, g) {
					return fmt.Sprintf("port forward %s: host port %s %d is forwarded already, by the VM of MAC %s (%s) on this network (its forward %s): choose another host port, or stop that VM", f, f.Proto, f.HostPort, p.mac, p.addr, g)
				}
			}
		}
	}
	return ""
}

// connectedLocked reports whether a connected VM has address a (h.mu held).
func (h *Hub) connectedLocked(a netip.Addr) bool {
	for _, p := range h.ports {
		if p.addr == a {
			return true
		}
	}
	return false
}

// switchFrame delivers a frame from a VM (from) or the gateway (nil):
// broadcast and multicast to everyone else (a VM's to the other VMs
// within its flood limit), unicast to the station with that MAC. Frames
// are copied; towards a VM they are dropped if its queue is full, towards
// the gateway the sender waits.
func (h *Hub) switchFrame(from *hubPort, frame []byte) {
	if from == nil {
		// The gateway's DHCP replies go to their client only, though
		// broadcast (to a client without an address): else a VM's
		// requests, beyond its flood limit too, would make the gateway
		// flood the others with one reply each.
		if mac, ok := dhcpReplyTo(frame); ok {
			h.mu.RLock()
			p := h.ports[mac]
			h.mu.RUnlock()
			if p == nil {
				h.dropped.Add(1)
				return
			}
			h.push(p, frame)
			return
		}
	}
	dst := frame[:6]
	if dst[0]&1 != 0 {
		if from == nil || from.flood.allow(len(frame), h.now()) {
			h.mu.RLock()
			for _, p := range h.ports {
				if p != from {
					h.push(p, frame)
				}
			}
			h.mu.RUnlock()
		} else {
			h.limited.Add(1)
		}
		if from != nil {
			// Even beyond the limit: the sender's own DHCP and ARP
			// go on, and the gateway's queue holds back only the
			// sender.
			h.toGateway(frame)
		}
		return
	}
	if from != nil && bytes.Equal(dst, UserGatewayMAC) {
		h.toGateway(frame)
		return
	}
	var key [6]byte
	copy(key[:], dst)
	h.mu.RLock()
	p := h.ports[key]
	h.mu.RUnlock()
	if p == nil || p == from {
		h.dropped.Add(1)
		return
	}
	h.push(p, frame)
}

func (h *Hub) push(p *hubPort, frame []byte) {
	before := p.out.dropped.Load()
	p.out.pushParts([][]byte{frame})
	if p.out.dropped.Load() == before {
		h.switched.Add(1)
		return
	}
	h.dropped.Add(1)
	if wait := writeTimeout(); p.out.fullFor() >= wait && p.cause.CompareAndSwap(nil, fmt.Sprintf("dropped: its connection took no frame for %v", wait)) {
		// The reader sees the connection end and closes the port; the
		// writer's blocked write ends with it.
		_ = p.conn.Close()
	}
}

func (h *Hub) toGateway(frame []byte) {
	if h.gw.in.pushWait(frame) == nil {
		h.switched.Add(1)
	}
}

// hubGatewaySink switches the gateway's frames.
type hubGatewaySink struct{ h *Hub }

func (s hubGatewaySink) pushParts(parts [][]byte) {
	f := copyParts(parts...)
	if len(f) >= EthernetHeaderSize {
		s.h.switchFrame(nil, f)
	}
	releaseFrame(f)
}

// hubPort is one VM's connection to the hub.
type hubPort struct {
	h        *Hub
	conn     net.Conn
	mac      net.HardwareAddr
	key      [6]byte
	uid      int // its owner (peerUser.owner), -1 when unknown
	addr     netip.Addr
	forwards []Forward
	stops    []func() error
	out      *frameQueue
	// ll is the VM's IPv6 link-local address, made from its MAC
	// (hubfilter.go).
	ll    netip.Addr
	flood floodLimit // used by readLoop's goroutine only
	fwd   forwardCounts
	// leaving is set once unregister begins: its forwards no longer
	// hold their host ports for another VM (takenLocked).
	leaving atomic.Bool
	// cause, when set, is why the hub ended the VM's connection, said
	// when it leaves rather than the read's error.
	cause atomic.Value // string

	closeOnce sync.Once
}

// close unregisters the VM and closes its connection.
func (p *hubPort) close() {
	p.unregister()
	_ = p.conn.Close()
}

// unregister takes the VM out: its forwards stop, its NAT relays end
// unless it rejoins (endNATLater), its MAC leaves the switch, its queue
// closes (ending writeLoop), and its lease is marked seen now (and saved
// in the background).
func (p *hubPort) unregister() {
	p.closeOnce.Do(func() {
		p.leaving.Store(true)
		// The forwards stop first: a VM reconnecting at once is told
		// its MAC is still connected (and tries again) rather than that
		// its own host ports are taken (which it would take as final).
		p.stopForwards()
		// Its connections through the NAT end with it, once it has
		// not rejoined for hubNATGrace (a VM dropped, or that drops
		// a stalled hub, rejoins at once and keeps them), or as
		// another VM, or it started again, joins at its address: else
		// their host sockets stayed open, and counted against the
		// bounds of the VM started again with its MAC. Set before it
		// leaves the switch (until then no other VM has its address).
		if p.addr.IsValid() {
			p.h.endNATLater(p.key, p.addr)
		}
		// Touched as the port goes, so that once the VM is out of the
		// switch its lease counts as seen now.
		p.h.mu.Lock()
		touched, left := false, false
		if p.h.ports[p.key] == p {
			delete(p.h.ports, p.key)
			touched, left = p.h.leases.touch(p.mac, p.h.now()), true
		}
		p.h.mu.Unlock()
		if left {
			p.h.noteChange()
		}
		p.out.close()
		if touched {
			p.h.requestSave()
		}
	})
}

func (p *hubPort) stopForwards() {
	for _, stop := range p.stops {
		_ = stop()
	}
}

// floodLimit is a token bucket of hubFloodBurst bytes refilled at
// hubFloodRate, kept as the time at which it would be full again
// (virtual scheduling): no refill to compute, and integer arithmetic.
type floodLimit struct {
	full time.Time // the bucket is full from then on
}

// hubFloodBurstTime is how long the bucket takes to fill.
const hubFloodBurstTime = time.Duration(hubFloodBurst * int64(time.Second) / hubFloodRate)

// allow takes a frame of n bytes out of the bucket at now; false, taking
// nothing, when the bucket holds less.
func (l *floodLimit) allow(n int, now time.Time) bool {
	full := l.full
	if full.Before(now) {
		full = now
	}
	full = full.Add(time.Duration(int64(n+hubFloodFrameCost) * int64(time.Second) / hubFloodRate))
	if full.Sub(now) > hubFloodBurstTime {
		return false
	}
	l.full = full
	return true
}

// readLoop switches the VM's frames until its connection ends.
func (p *hubPort) readLoop() error {
	br := bufio.NewReaderSize(p.conn, hubIOBuffer)
	buf := make([]byte, smallFrame)
	for {
		f, err := readFramed(br, buf)
		if err != nil {
			return err
		}
		buf = f[:cap(f)]
		switch p.judge(f) {
		case hubDrop:
			p.h.spoofed.Add(1)
		case hubToGateway:
			p.h.toGateway(f)
		case hubAnswerARP:
			p.h.push(p, gatewayARPReply(f))
		default:
			p.h.switchFrame(p, f)
		}
	}
}

// writeLoop sends the VM the frames switched to it, flushing whenever the
// queue runs empty, until the port closes or a write fails.
func (p *hubPort) writeLoop() {
	defer p.h.wg.Done()
	bw := bufio.NewWriterSize(p.conn, hubIOBuffer)
	for {
		f, err := p.out.popFrame()
		if err != nil {
			return
		}
		for err == nil {
			err = writeFramed(bw, f)
			releaseFrame(f)
			var more bool
			if f, more = p.out.tryPopFrame(); !more {
				break
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			// The reader sees the connection end and closes the port.
			_ = p.conn.Close()
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.EPIPE) {
				p.h.logf("VM %s: %v", p.mac, err)
			}
			return
		}
	}
}
