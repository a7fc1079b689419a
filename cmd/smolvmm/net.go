package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/internal/termsafe"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/snapshot"
)

func netCommand() *cli.Command {
	return &cli.Command{
		Name:      "net",
		Usage:     "run a user network that several VMs share (--net user:NAME), in the foreground",
		ArgsUsage: " ",
		Description: `One rootless user network for many VMs: one gateway (10.0.2.2: NAT to the
host, whose loopback it stands for; DNS at 10.0.2.3 from the host's resolver;
DHCP) and an Ethernet switch between it and every VM that joins, so that VMs
reach each other by address. Each MAC is leased its own address from
10.0.2.15 upward, kept across restarts in the lease file; one user's VMs
hold at most 120 at once (root's and the network's own user's, any). A VM joins with
smolvmm run --net user:NAME (or user:/path/to.sock); its -p forwards
listen on the host while it is connected.

The socket is $XDG_RUNTIME_DIR/smolvmm/net/NAME.sock (root:
/run/smolvmm/net/NAME.sock; without XDG_RUNTIME_DIR, /tmp/smolvmm-UID/net,
under $TMPDIR if set),
mode 0600: only its owner's VMs may join (--group GROUP: also that group's
members'; set on every start); the default directory is mode 0711, shared
by every network. The leases are next to it, in NAME.leases, mode 0600,
locked while the network runs (NAME.leases.lock): a second network given
the same file is refused. A lease file that is a symlink, another user's
or writable by others, or in a directory another user owns or may replace
files in (unless sticky, as /tmp), is refused; so is one with a lease that
does not parse (the message gives its byte offset, lease and field). A
MAC's lease belongs to the user whose VM joined with it (for root's VM
started with run --user, the user it said it would drop to): another
user's VM with that MAC is refused for good, even once a full pool gave
its address to another MAC (the lease is kept without it, up to 2048 such
leases, the user with the most losing first); root's may take any. A
VM may forward a host port below 1024 (net.ipv4.ip_unprivileged_port_start)
only if its process is root's, or if it runs as the user that root's VM
of the same MAC said it would drop to (run --user, or run --uid) when it
joined with that forward: such a VM rejoins as that user after the network
restarts; any other user with that MAC is refused. If the network stops,
its VMs keep running and reconnect when it is back. A VM started while
the network starts waits for it (up to 5 s). Once it listens it says so
to the service manager that set NOTIFY_SOCKET (systemd, Type=notify:
READY=1). SIGINT, SIGTERM or SIGHUP stop it, with status 0 (a service manager's
normal stop). Only the default directory is created: the directory of
--socket must exist.

Examples:
   smolvmm net                        # the network "default"
   smolvmm net --name web             # then: smolvmm run --net user:web ...
   smolvmm net --socket /srv/vms/net.sock --leases /var/lib/vms/net.leases`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Value: "default", Usage: "network `NAME` (letters, digits, '.', '_', '-'); VMs join with smolvmm run --net user:NAME"},
			&cli.StringFlag{Name: "socket", Usage: "listen on the Unix socket `PATH` instead of the one --name gives; VMs join with smolvmm run --net user:PATH"},
			&cli.StringFlag{Name: "leases", Usage: "keep the DHCP leases in `FILE` (default: next to the socket, .leases for .sock)"},
			&cli.StringFlag{Name: "group", Usage: "let the VMs of `GROUP`'s members join too (name or number; without root, a group of your own): socket mode 0660, that group's"},
			&cli.BoolFlag{Name: "quiet", Usage: "do not log VMs joining and leaving"},
			&cli.BoolFlag{Name: "no-seccomp", Usage: "do not install the seccomp filter that limits the running network to the system calls it needs (for debugging; a refused call names itself)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say how large the seccomp filter is"},
		},
		Action: netAction,
	}
}

func netAction(c *cli.Context) error {
	if err := checkArgs(c, 0, ""); err != nil {
		return err
	}
	socket := c.String("socket")
	if socket != "" && c.IsSet("name") {
		return usageErrorf("smolvmm net: give --name or --socket, not both")
	}
	if socket == "" {
		s, err := netback.HubSocket(c.String("name"))
		if err != nil {
			return usageErrorf("--name: %v", err)
		}
		if err := checkHubSocketLength("--name "+c.String("name"), s); err != nil {
			return err
		}
		socket = s
	} else {
		if err := checkSocketFlag(socket); err != nil {
			return err
		}
		if dir := filepath.Dir(socket); filepath.Clean(dir) != netback.HubDir() {
			// Only the default runtime directory is created: a mistyped
			// --socket would otherwise make a tree nobody asked for.
			if err := checkOutputDir("--socket", socket, "listen"); err != nil {
				return err
			}
			// The socket is bound under a temporary name in its
			// directory, then renamed into place.
			if err := checkWritableDir("--socket", socket, "listen"); err != nil {
				return err
			}
		}
	}
	// The hub saves the leases when they change, long after the start:
	// a path it cannot write then would lose them without a word.
	if l := c.String("leases"); l != "" {
		if err := checkOutputDir("--leases", l, "keep them"); err != nil {
			return err
		}
		if st, err := os.Stat(l); err == nil && st.IsDir() {
			return fmt.Errorf("--leases %s: that is a directory; give a file (e.g. %s)", l, filepath.Join(l, "net.leases"))
		} else if err == nil && !st.Mode().IsRegular() {
			// Each save replaces the file: a device or FIFO cannot be.
			return &fileError{fmt.Sprintf("--leases %s is %s, not a regular file: give a file to keep the leases in (it is made if missing)", l, filekind.Of(st.Mode())), regfile.ErrNotRegular}
		}
		// Its lock is made beside it, and each save renamed over it.
		if err := checkWritableDir("--leases", l, "keep them"); err != nil {
			return err
		}
	}
	gid := 0
	if g := c.String("group"); g != "" {
		var err error
		if gid, err = lookupGroup(g); err != nil {
			return err
		}
	}
	// Once the flags are checked (a mistyped one makes no lock file),
	// before the set-up below: a VM started together with the network
	// (smolvmm net &, then smolvmm run) waits for a network whose start
	// holds this lock, and fails if none does.
	releaseStart, err := netback.HoldHubStart(socket)
	if err != nil {
		return hubStartError(err)
	}
	defer releaseStart()
	dlog := &daemonLog{w: os.Stderr, now: time.Now}
	cfg := netback.HubConfig{Socket: socket, Leases: c.String("leases"), Logf: dlog.logf, Group: gid}
	if c.Bool("quiet") {
		cfg.Logf = nil
	}
	leases := cfg.Leases
	if leases == "" {
		leases = netback.HubLeases(socket)
	}
	// Connected now, before the filter, which allows no connect to it.
	notify, err := openNotify(os.Getenv("NOTIFY_SOCKET"))
	if err != nil {
		warnf(os.Stderr, "net", "%v: the service manager will not learn that the network is ready", err)
	}
	defer notify.close()
	var prepared *sandbox.Prepared
	var lw *leaseWriter
	if !c.Bool("no-seccomp") {
		// Assembled while the hub starts.
		prepared = sandbox.Prepare(netFilter())
		lw = &leaseWriter{ready: make(chan struct{})}
		cfg.Contained, cfg.WriteLeases, cfg.RemoveSocket = true, lw.write, lw.removeSocket
		cfg.ReadHostFiles = lw.readHostFiles
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopSignals...) // fetch.go
	defer signal.Stop(sigs)
	h, err := netback.NewHub(cfg)
	releaseStart() // listening, or failed
	if err != nil {
		return hubStartError(err)
	}
	// Now: filepath.Abs stats the working directory.
	join := joinName(c, socket)
	release := releaseDaemonPages // exepages.go
	if prepared != nil {
		if err := lw.open(leases, h); err != nil {
			return errors.Join(err, h.Close())
		}
		// After the hub's last save, which goes through it.
		defer lw.close()
		if release, err = heldRelease(); err != nil {
			return errors.Join(err, h.Close())
		}
		warmListen()
		inst, err := prepared.Install()
		if err != nil {
			return errors.Join(fmt.Errorf("%w (smolvmm net --no-seccomp runs without the filter)", err), h.Close())
		}
		if c.Bool("verbose") {
			fmt.Fprintf(os.Stderr, "smolvmm net: %s installed on every thread\n", inst)
		}
	} else if c.Bool("verbose") {
		fmt.Fprintln(os.Stderr, "smolvmm net: no seccomp filter (--no-seccomp): the network may make any system call")
	}
	if netAfterSetup != nil {
		netAfterSetup() // nettesthook.go, in the tests' build only
	}
	stopReleases := func() {}
	if release(cfg.Logf) { // said once if not
		stopReleases = releaseAfterJoins(h, cfg.Logf, release)
	}
	defer stopReleases()
	dlog.start(fmt.Sprintf("smolvmm net: listening on %s (gateway %s, DNS %s, leases from %s in %s); join with --net user:%s\n",
		socket, netback.UserGateway, netback.UserDNS, netback.UserGuest, leases, join))
	if err := notify.ready(); err != nil {
		dlog.logf("warning: %v: the service manager will not learn that the network is ready", err)
	}
	sig := <-sigs
	stopReleases() // before the hub closes under it
	s := h.Stats()
	if err := h.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "smolvmm net: %v: stopped (%d VMs were connected; %d frames switched, %d dropped, %d spoofed, %d broadcasts over a VM's flood limit, %d forwarded connections refused while too many waited for their VM, "+
		"%d forwarded UDP datagrams of new clients dropped at a forward's or VM's bound, %d outgoing connections and %d UDP flows refused at a VM's, its user's or the network's bound, %d outgoing connections delayed while too many were being dialled or left unanswered by their VM, %d DNS queries refused while too many were asked, %d DNS TCP connections refused at a VM's bound)\n",
		sig, s.VMs, s.Switched, s.Dropped, s.Spoofed, s.Limited, s.ForwardsRefused, s.ForwardFlowsRefused, s.NATRefusedConns, s.NATRefusedFlows, s.NATHeldConns, s.DNSRefused, s.DNSRefusedConns)
	return nil
}

// notifier tells the service manager that started the process (systemd,
// for a unit of Type=notify) that the network is ready: the sd_notify
// protocol, a datagram "READY=1" to the Unix socket it names in
// NOTIFY_SOCKET. The daemon is the unit's main process (it forks no
// other to serve), whom the default NotifyAccess=main believes. A nil
// notifier tells no one.
type notifier struct{ conn *net.UnixConn }

// openNotify connects to path, NOTIFY_SOCKET's value: a socket file, or,
// starting with '@', a name in the abstract namespace. "" (none set) is
// a nil notifier. Connected at the start, as the contained daemon's
// filter allows no connect to it later; NOTIFY_SOCKET is left set (the
// daemon starts no process that could notify: its broker is given no
// environment).
func openNotify(path string) (*notifier, error) {
	if path == "" {
		return nil, nil
	}
	// Go's address of a name starting with '@' is the abstract one.
	if path[0] != '@' && !filepath.IsAbs(path) {
		return nil, fmt.Errorf("NOTIFY_SOCKET %q is neither an absolute path nor an abstract name ('@')", path)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("NOTIFY_SOCKET %s: %w", path, err)
	}
	return &notifier{conn: c}, nil
}

// ready sends READY=1: called once the socket accepts VMs and the start
// line is written.
func (n *notifier) ready() error {
	if n == nil {
		return nil
	}
	if _, err := n.conn.Write([]byte("READY=1")); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET: %w", err)
	}
	return nil
}

// close closes n's socket.
func (n *notifier) close() {
	if n != nil {
		n.conn.Close()
	}
}

// hubStartError is err, from starting the network (netback.HoldHubStart,
// netback.NewHub), with what to do about it.
func hubStartError(err error) error {
	switch {
	case errors.Is(err, netback.ErrHubRunning):
		return fmt.Errorf("%w (stop it first, or give another --name or --socket)", err)
	case errors.Is(err, netback.ErrLeasesInUse):
		return fmt.Errorf("%w (two networks would overwrite each other's leases: stop that one, or give this one another --leases)", err)
	case errors.Is(err, netback.ErrRuntimeDirForeign):
		// Under a sticky /tmp only its owner or root may remove it.
		return fmt.Errorf("%w (another user made it first: set XDG_RUNTIME_DIR to a directory of your own, give --socket in a directory of your own, or ask that user or root to remove it)", err)
	case errors.Is(err, netback.ErrLeasesLockLink):
		// advise's own advice, for the lock alone: --leases is not at
		// fault, its lock is.
		return err
	case errors.Is(err, netback.ErrLeasesUnsafe):
		return fmt.Errorf("%w (give --leases a file of your own, not a symlink, in a directory only you or root may write, or a sticky one such as /tmp)", err)
	case errors.Is(err, netback.ErrLeasesNewer):
		// This one would save it without the fields it does not know,
		// such as a lease's owner.
		return fmt.Errorf("%w (a newer smolvmm wrote it: run that smolvmm, or move the file away to start afresh, losing its leases)", err)
	}
	return err
}

// checkWritableDir refuses path, flag's value, whose directory this
// process may not make files in (access(2) with W_OK: its mode, or a
// read-only file system, as a service's ProtectSystem= makes), saying
// what to do: the network makes files there (verb says what for) and
// would fail with a temporary file's name, or, for the leases, at their
// first save.
func checkWritableDir(flag, path, verb string) error {
	dir := filepath.Dir(path)
	err := unix.Access(dir, unix.W_OK|unix.X_OK)
	if err == nil {
		return nil
	}
	advice := fmt.Sprintf("let uid %d write it", os.Geteuid())
	if errors.Is(err, unix.EROFS) {
		advice = "make it writable (a systemd unit's ReadWritePaths=)"
	}
	return fmt.Errorf("%s %s: cannot %s there: directory %s: %w (pick another %s, or %s)", flag, path, verb, dir, err, flag, advice)
}

// daemonLog is smolvmm net's standard error: its start line, then the
// hub's lines. The hub serves from NewHub on, before the start line can
// be written, and a VM that was waiting to rejoin connects at once: the
// lines logged meanwhile are held until the start line, so that the log
// never tells of a VM joining or refused before the network says it
// listens (nor does a reader waiting for that line miss them).
type daemonLog struct {
	w   io.Writer
	now func() time.Time

	mu      sync.Mutex
	started bool
	held    []string
}

// logf writes a line with the time, or holds it until start. Its
// control characters are escaped (termsafe.Line): a line may carry a
// VM's text, which must neither forge a line nor act on a terminal.
func (l *daemonLog) logf(format string, args ...any) {
	line := fmt.Sprintf("smolvmm net: %s %s\n", l.now().Format("15:04:05"), termsafe.Line(fmt.Sprintf(format, args...)))
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.held = append(l.held, line)
		return
	}
	_, _ = io.WriteString(l.w, line)
}

// start writes line, then the lines held, and lets logf write from then
// on.
func (l *daemonLog) start(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, line)
	for _, h := range l.held {
		_, _ = io.WriteString(l.w, h)
	}
	l.started, l.held = true, nil
}

// checkHubSocketLength refuses socket, the path a network's name gives
// in the default runtime directory (netback.HubSocket), when it is too
// long for a Unix socket's address, saying what to shorten. Status 1,
// for net --name and for the commands that join with --net user:NAME
// alike: the name is valid, and the runtime directory, which the
// environment chooses, is as much at fault (a path given as it is,
// --socket or --net user:PATH, is the flag's mistake: status 2). flag is
// how the command line named the network.
func checkHubSocketLength(flag, socket string) error {
	if len(socket) <= netback.MaxSocketPath {
		return nil
	}
	dir := "set XDG_RUNTIME_DIR to a shorter directory of your own"
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt == "" || !filepath.IsAbs(rt) {
		dir = "set XDG_RUNTIME_DIR to a short directory of your own (without it the runtime directory is under TMPDIR, else /tmp)"
	}
	return fmt.Errorf("%s: its socket %s is %d bytes long; a Unix socket's path has at most %d: give the network a shorter name, or %s", flag, socket, len(socket), netback.MaxSocketPath, dir)
}

// checkSocketFlag refuses a --socket path no socket can be made at: one
// too long for a Unix socket's address (a mistake in the flag, status 2),
// or a file of another kind already there (which the network would not
// remove), saying what to give instead; "-" too (checkNotStdout).
func checkSocketFlag(socket string) error {
	if err := checkNotStdout("--socket", socket); err != nil { // filemsgs.go
		return err
	}
	if len(socket) > netback.MaxSocketPath {
		return usageErrorf("--socket %s is %d bytes long; a Unix socket's path has at most %d: give a shorter one (it may be relative to the current directory)", socket, len(socket), netback.MaxSocketPath)
	}
	st, err := os.Lstat(socket)
	switch {
	case err != nil || st.Mode()&os.ModeSocket != 0:
		// Missing, or a socket: the network's own checks (a stale one
		// is replaced, a live one refused).
		return nil
	case st.IsDir():
		return fmt.Errorf("--socket %s is a directory, not a socket: give a path where no file is, e.g. %s", socket, filepath.Join(socket, "net.sock"))
	}
	return fmt.Errorf("--socket %s is %s, not a socket: give a path where no file is (the network makes its socket there)", socket, filekind.Of(st.Mode()))
}

// joinsQuiet are the quiet periods (no join, no leave, no lease file
// written, as the hub reports) after which the daemon unmaps its
// executable again: soon after a burst of joins (a VM every few ms when
// many start at once), which costs one release, then once more when what
// the joins left running has run (the garbage collector's cycle and
// sweeping after their allocations, the lease file's writer), which maps
// back ~2 MiB in the second after.
var joinsQuiet = []time.Duration{100 * time.Millisecond, 1500 * time.Millisecond}

// releaseAfterJoins unmaps the daemon's executable again each time VMs
// have joined or left and then, their lease file written, nothing has
// changed for each of joinsQuiet in turn: a join or a leave runs code
// the daemon does not run again (the handshake, the lease file, a NIC's
// set-up and removal), ~6 MiB of it mapped back 64 KiB at a time, which
// every VM on the network would pay a share of. One release takes
// ~0.5 ms. It waits on the hub's changes, so an idle daemon never wakes
// for it. The returned stop joins its goroutine.
//
// The last release of a burst also returns the heap's free memory to the
// kernel (debug.FreeOSMemory, a collection of its few MiB): a daemon that
// VMs leave and join keeps otherwise the high-water mark of their
// buffers, ~12.5 MiB anonymous after 50 VMs left and 50 others joined
// (~3.5 MiB with it), at the cost of ~0.6 MiB to a daemon joined once.
func releaseAfterJoins(h *netback.Hub, logf func(string, ...any), release func(func(string, ...any)) bool) (stop func()) {
	return releaseLoop(h.Changed(), joinsQuiet, time.After, func(period int) bool {
		if period == len(joinsQuiet)-1 {
			debug.FreeOSMemory() // before the release: its code goes too
		}
		return release(logf)
	})
}

// releaseLoop, after each token on changed, calls release(0) once no
// token has come for quiet[0] (after(quiet[0]) fired), then release(1)
// after quiet[1] more, and so on; a token meanwhile starts over at
// quiet[0].
// It ends when release returns false (it said why, once; a debugger's
// breakpoints stay) or stop is called, which joins its goroutine.
func releaseLoop(changed <-chan struct{}, quiet []time.Duration, after func(time.Duration) <-chan time.Time, release func(period int) bool) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case <-done:
				return
			case <-changed:
			}
			for i := 0; i < len(quiet); {
				select {
				case <-done:
					return
				case <-changed:
					i = 0
				case <-after(quiet[i]):
					if !release(i) {
						return
					}
					i++
				}
			}
		}
	}()
	return func() {
		select {
		case <-done:
		default:
			close(done)
		}
		<-ended
	}
}

// joinName is what --net user: takes to join this network: the name, or
// the socket's absolute path (a relative one without a '/' would be read
// as a name, and would not be found from another directory), or, where
// that is too long for a Unix socket address, the path as given with a
// '/' in it.
func joinName(c *cli.Context, socket string) string {
	return joinValue(c.String("name"), c.String("socket") != "", c.String("group") != "", socket)
}

// joinValue is joinName of network name listening on socket, given by
// --socket (bySocket) or not, for a --group (group) or not: another
// user's run reads a name in their own runtime directory, so a network
// that a group's members join is said by its socket's path.
func joinValue(name string, bySocket, group bool, socket string) string {
	if !bySocket && !group {
		return name
	}
	if abs, err := filepath.Abs(socket); err == nil && len(abs) <= netback.MaxSocketPath {
		return abs
	}
	if !strings.ContainsRune(socket, '/') {
		return "./" + socket
	}
	return socket
}

// netFilter is the daemon's seccomp filter: the Go runtime's calls, I/O
// on what it holds (the VMs' connections, the lease file's temporaries,
// its broker), accepting VMs, and the IPv4 and IPv6 sockets of the NAT,
// the DNS forwarding and the VMs' forwarded ports, which it binds and
// listens on when they join. No file is opened, renamed or removed by
// name: the lease file is replaced, and the socket file removed at the
// stop, by the broker (leaseWriter), which reads the resolver's files
// for it too when they change (HubConfig.ReadHostFiles).
func netFilter() sandbox.Filter {
	return sandbox.Filter{
		Sockets:  true,
		Listen:   true,
		Truncate: true, // a lease temporary, emptied before it is written
		Process:  "the network",
		Prefix:   "smolvmm net: ",
		Advice:   noSeccompAdvice("net"),
	}
}

// warmListen listens once on a TCP port of the loopback, and closes it,
// before the filter: Go's net package learns, at its first TCP listener
// (a VM's forward, later), whether the kernel has MPTCP (socket, uname)
// and the largest backlog (/proc/sys/net/core/somaxconn), once, with
// calls the filter refuses. A loopback that takes no listener leaves
// them to that first forward, which then stops the daemon and says so.
func warmListen() {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
}

// netAfterSetup, when set, runs once the daemon is contained: the tests'
// build attempts testHookEnv's call there (nettesthook.go).
var netAfterSetup func()

// leaseWriter writes a contained network's lease file: through a
// snapshot.Target opened once the hub holds the file's lock, whose
// temporaries it writes and whose renames the broker does (broker.go),
// as a --snapshot VMM's. The broker removes the hub's socket file at the
// stop too, and reads the host's resolver files for the hub's DNS.
// Writes wait for open.
type leaseWriter struct {
	ready chan struct{} // closed by open
	t     *snapshot.Target
	b     *broker
	err   error
	// socket is the hub's socket file, absolute, and socketID the
	// socket it bound there (set by open).
	socket   string
	socketID snapshot.FileID
}

// open opens the lease file at path and starts its broker, which is
// given h's socket file to remove at the stop.
func (w *leaseWriter) open(path string, h *netback.Hub) (err error) {
	defer func() {
		w.err = err
		close(w.ready)
	}()
	st, ok := h.SocketFile().Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("--socket %s: no device and inode known", h.Socket())
	}
	if w.socket, err = filepath.Abs(h.Socket()); err != nil {
		return fmt.Errorf("--socket %s: %w", h.Socket(), err)
	}
	w.socketID = snapshot.FileID{Dev: uint64(st.Dev), Ino: st.Ino}
	t, err := snapshot.OpenTarget(path)
	if err != nil {
		return fmt.Errorf("--leases %s: %w", path, err)
	}
	d, files, ok := t.Names()
	if !ok {
		t.Close()
		return fmt.Errorf("--leases %s: closed before the network ran", path)
	}
	fd, err := unix.FcntlInt(d.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Close()
		return fmt.Errorf("--leases %s: its directory: %w", path, err)
	}
	dir := os.NewFile(uintptr(fd), d.Name())
	b, err := brokerStart(brokerArgs{files: files, socket: w.socket, socketID: w.socketID}, dir, nil, true)
	dir.Close()
	if err != nil {
		t.Close()
		return fmt.Errorf("--leases %s: %w", path, err)
	}
	t.UseRenamer(brokerRenamer{b})
	w.t, w.b = t, b
	return nil
}

// write replaces the lease file's content with table.
func (w *leaseWriter) write(table []byte) error {
	<-w.ready
	if w.err != nil {
		return w.err
	}
	return w.t.Write(func(out io.Writer) error {
		_, err := out.Write(table)
		return err
	})
}

// removeSocket removes the hub's socket file at its stop
// (HubConfig.RemoveSocket): through the broker; or, when open failed
// before the broker started, itself, not contained yet.
func (w *leaseWriter) removeSocket() error {
	<-w.ready
	if w.b == nil {
		if w.socket == "" {
			return nil // nothing known of it: left, and replaced as stale
		}
		return removeSocketFile(unix.AT_FDCWD, w.socket, w.socketID)
	}
	return w.b.removeSocket()
}

// readHostFiles looks at the host's resolver files through the broker
// (HubConfig.ReadHostFiles); before the broker started (open failed),
// not at all: the configuration read at the start is kept.
func (w *leaseWriter) readHostFiles(content bool) (netback.HostFiles, error) {
	<-w.ready
	if w.b == nil {
		return netback.HostFiles{}, fmt.Errorf("no broker to read them: %w", w.err)
	}
	return w.b.hostFiles(content)
}

// close removes the temporaries and ends the broker.
func (w *leaseWriter) close() {
	if w.t != nil {
		w.t.Close()
		w.b.Close()
	}
}

// heldRelease is releaseDaemonPages for a contained daemon, which may
// not open /proc/self/status again: it reads the tracer's PID through a
// descriptor opened now.
func heldRelease() (func(func(string, ...any)) bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	return func(logf func(string, ...any)) bool {
		b := make([]byte, 4096)
		n, _ := f.ReadAt(b, 0)
		return releaseUntraced(tracerIn(b[:n]), logf)
	}, nil
}

// lookupGroup turns --group's name or number into a group ID, refusing
// one the socket cannot be given (checkOwnGroup). A number is bounded as
// run's --gid is: past sandbox.MaxID lchown(2) takes 4294967295 as
// "unchanged" and cuts larger ones to 32 bits, which gave the socket
// another group, root's included, without a word.
func lookupGroup(g string) (int, error) {
	gid, err := strconv.ParseInt(g, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && strings.HasPrefix(g, "-"), err == nil && gid < 0:
		return 0, usageErrorf("--group %s: ids are not negative; give a group name, or a group id between 1 and %d", g, maxID)
	case errors.Is(err, strconv.ErrRange), err == nil && gid > maxID:
		return 0, usageErrorf("--group %s: ids go up to %d", g, maxID)
	case err != nil:
		grp, lerr := user.LookupGroup(g)
		if lerr != nil {
			return 0, usageErrorf("--group %s: no such group (give a group name or number)", g)
		}
		if gid, err = strconv.ParseInt(grp.Gid, 10, 64); err != nil || gid < 0 || gid > maxID {
			return 0, usageErrorf("--group %s: group ID %q is not a number between 0 and %d", g, grp.Gid, maxID)
		}
	}
	if gid == 0 {
		return 0, usageErrorf("--group %s: give the group of the VMs' users, not root's (root reaches the socket anyway)", g)
	}
	groups, _ := os.Getgroups()
	listed := false
	if u, err := user.Current(); err == nil {
		ids, _ := u.GroupIds()
		listed = slices.Contains(ids, strconv.FormatInt(gid, 10))
	}
	if err := checkOwnGroup(g, int(gid), os.Geteuid(), os.Getegid(), groups, listed); err != nil {
		return 0, err
	}
	return int(gid), nil
}

// checkOwnGroup refuses --group g (gid) to a process of euid that has
// not the group, as its effective (egid) or a supplementary group
// (groups): chown(2) gives a file to another group only with CAP_CHOWN,
// which euid 0 stands for here (root has it; another user's process
// rarely does, and one that has it is refused a group it could give,
// rather than failing late at the socket's lchown, status 1). listed: the
// group database lists the user in it, which a new login would give.
func checkOwnGroup(g string, gid, euid, egid int, groups []int, listed bool) error {
	if euid == 0 || egid == gid || slices.Contains(groups, gid) {
		return nil
	}
	if listed {
		return usageErrorf("--group %s: without root the socket can only be given to a group of your own, and this login (uid %d) has not got group %d yet, though the user is in it now: log in again, or run smolvmm net as root", g, euid, gid)
	}
	own := []string{groupName(egid)}
	for _, o := range groups {
		if o != egid {
			own = append(own, groupName(o))
		}
	}
	return usageErrorf("--group %s: without root the socket can only be given to a group of your own, and group %d is not one of this user's (uid %d): %s; give one of those, or run smolvmm net as root", g, gid, euid, strings.Join(own, ", "))
}

// groupName is gid with its name, "1000 (alice)", or the number alone if
// it has none.
func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return fmt.Sprintf("%d (%s)", gid, g.Name)
	}
	return strconv.Itoa(gid)
}
