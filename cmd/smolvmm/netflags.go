package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/netback"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
)

// netFlags are the network options of run (and up): --net, -p/--publish
// and --mac.
func netFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "net", Value: "user",
			Usage: "network `MODE`: user (rootless NAT, guest 10.0.2.15, gateway 10.0.2.2, DNS 10.0.2.3), user:NAME or user:/path.sock (join the shared network smolvmm net runs), tap:NAME (attach to or create a tap), none (no network card)"},
		&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"},
			Usage: "forward a host port to the guest; `SPEC` is [tcp|udp:][hostaddr:]hostport:guestport (repeatable; host side on 127.0.0.1 unless hostaddr is given; needs the user network: --net user, user:NAME or user:/path.sock)"},
		&cli.StringFlag{Name: "mac", Usage: "guest NIC `MAC` address (default 52:54:00 + 3 bytes of a hash of the first disk's path (a shared directory's, for a share), stable across runs)"},
	}
}

// netConfig is what the network flags ask for.
type netConfig struct {
	// Spec is the --net value: user, user:NAME, user:PATH, tap:NAME or none.
	Spec string
	// Forwards are the -p forwards.
	Forwards []netback.Forward
	// MAC is the guest NIC's address.
	MAC net.HardwareAddr
	// Logf, when set, is told of a shared network lost, failing to be
	// rejoined and rejoined (-v).
	Logf func(format string, args ...any)
	// Notef, when set, is told the same in a line each (without -v),
	// and Lasting which rejoin failures will not end by themselves
	// (netback.JoinOptions).
	Notef   func(format string, args ...any)
	Lasting func(error) bool
	// RunsAs is the uid the VMM runs as once set up, when it drops root
	// (--user, --uid), else 0: a shared network started by root lets
	// that uid rejoin with the privileged forwards root's join had.
	RunsAs int
}

// parseNetFlags reads --net, -p and --mac. seed makes the default MAC
// stable: pass the first disk image's path ("" gives a random address).
func parseNetFlags(c *cli.Context, seed string) (netConfig, error) {
	nc, err := parseNetValues(c.String("net"), c.StringSlice("publish"), c.String("mac"), seed)
	if err != nil {
		// Every error of parseNetValues is a flag value: exit status 2.
		return nc, usageErrorf("%v", err)
	}
	// A name's socket too long for its address: else only the join,
	// after the VM is built, said "connect: invalid argument".
	if name, ok := strings.CutPrefix(nc.Spec, "user:"); ok && !strings.ContainsRune(name, '/') {
		if socket, err := netback.HubSocket(name); err == nil {
			if err := checkHubSocketLength("--net "+nc.Spec, socket); err != nil { // net.go
				return nc, err
			}
		}
	}
	return nc, nil
}

// parseNetValues checks the network options without opening anything, so
// a typo fails before the VM is built.
func parseNetValues(spec string, publish []string, mac, seed string) (netConfig, error) {
	cfg := netConfig{Spec: spec}
	kind, name, hasArg := strings.Cut(spec, ":")
	switch {
	case (kind == "user" || kind == "none") && !hasArg:
	case kind == "user" && name != "":
		if _, err := netback.ResolveHub(name); err != nil {
			return cfg, fmt.Errorf("--net %s: %w", spec, err)
		}
		// As smolvmm net's --socket: a path given too long for a Unix
		// socket's address is the flag's mistake.
		if strings.ContainsRune(name, '/') && len(name) > netback.MaxSocketPath {
			return cfg, fmt.Errorf("--net %s: the path is %d bytes long; a Unix socket's path has at most %d: give a shorter one (it may be relative to the current directory)", spec, len(name), netback.MaxSocketPath)
		}
	case kind == "tap" && name != "":
		if err := checkTapName(name); err != nil {
			return cfg, err
		}
	case kind == "tap":
		return cfg, fmt.Errorf("--net %q: name the tap interface, e.g. --net tap:tap0", spec)
	case kind == "user":
		return cfg, fmt.Errorf("--net %q: name the shared network, e.g. --net user:default (smolvmm net's), or give --net user for a NAT of the VM's own", spec)
	default:
		return cfg, fmt.Errorf("--net %q: unknown network; use user, user:NAME, tap:NAME or none", spec)
	}
	for _, p := range publish {
		f, err := netback.ParseForward(p)
		if err != nil {
			return cfg, fmt.Errorf("-p: %w", err)
		}
		for i, g := range cfg.Forwards {
			if netback.SameHostPort(f, g) {
				return cfg, fmt.Errorf("-p %s: host port %s %d given twice (also -p %s): one VM listens once on a port; give each host port once", p, f.Proto, f.HostPort, publish[i])
			}
		}
		cfg.Forwards = append(cfg.Forwards, f)
	}
	if len(cfg.Forwards) > 0 && kind != "user" {
		return cfg, fmt.Errorf("-p %s: port forwards need the user network, not --net %s: use --net user (the default), a shared one (user:NAME), or drop -p", publish[0], spec)
	}
	if mac != "" && kind == "none" {
		// As --ready-port: a flag for a card the VM will not have.
		return cfg, fmt.Errorf("--mac %s: with --net none the guest has no network card to give it: drop --mac, or use --net user or tap:NAME", mac)
	}
	switch {
	case kind == "none":
		// No card: no MAC (a random one read the kernel's random source
		// on every start, ~0.09 ms).
	case mac != "":
		m, err := vnet.ParseMAC(mac)
		if err != nil {
			return cfg, fmt.Errorf("--mac: %w", err)
		}
		cfg.MAC = m
	case seed != "":
		if abs, err := filepath.Abs(seed); err == nil {
			seed = abs
		}
		cfg.MAC = vnet.DefaultMAC(seed)
	default:
		cfg.MAC = randomMAC()
	}
	return cfg, nil
}

// isUserNet reports whether spec is a user network, the VM's own or a
// shared one (whose forwards also listen on the host).
func isUserNet(spec string) bool { return spec == "user" || isSharedNet(spec) }

// isSharedNet reports whether spec joins a shared network (user:NAME).
func isSharedNet(spec string) bool { return strings.HasPrefix(spec, "user:") }

// defaultParallelMAC is the first MAC of bench --parallel's VMs on a
// shared network without --mac, for the user uid whose processes they
// are: 52:54:00, uid's low 16 bits XOR 0x5b00 (root's are the
// 52:54:00:5b:00:00 of before), and 00, VM i taking i in the last byte.
// The same on every run, so that the network's leases are reused rather
// than new ones taken each run; another user's differ, since the network
// keeps a MAC for the user whose VM leased it: with one range for all, a
// second user's bench on a group's network had every VM refused. Two
// users' ranges meet only beyond 256 VMs (more than the network's
// addresses), or for uids 65536 apart; a uid whose low byte is 0xff has
// room for 256 VMs before the last two bytes would wrap, which
// checkParallelMACs refuses.
func defaultParallelMAC(uid int) net.HardwareAddr {
	v := uint16(uid) ^ 0x5b00
	return net.HardwareAddr{0x52, 0x54, 0x00, byte(v >> 8), byte(v), 0x00}
}

// parallelMACs gives VM i of bench --parallel its own MAC, base plus i in
// its last two bytes (checkParallelMACs refuses a base that would pass
// them).
func parallelMACs(base net.HardwareAddr) func(i int) []string {
	first := int(base[4])<<8 | int(base[5])
	return func(i int) []string {
		n := first + i
		return []string{"--mac", net.HardwareAddr{base[0], base[1], base[2], base[3], byte(n >> 8), byte(n)}.String()}
	}
}

// checkParallelMACs refuses the n VMs of bench --parallel whose MACs,
// base + i in the last two bytes (parallelMACs), would pass them: a carry
// would wrap to the start of the range, or to another user's default
// range (uid 1023's 257th VM had uid 768's first MAC). base is --mac
// (mac, when given and valid: its own errors are netConfig's) or, on a
// shared network (netSpec user:NAME), uid's own (defaultParallelMAC);
// another network with no --mac gives VMs MACs of their own.
func checkParallelMACs(n int, mac, netSpec string, uid int) error {
	var base net.HardwareAddr
	switch {
	case mac != "":
		m, err := vnet.ParseMAC(mac)
		if err != nil {
			return nil
		}
		base = m
	case isSharedNet(netSpec):
		base = defaultParallelMAC(uid)
	default:
		return nil
	}
	if first := int(base[4])<<8 | int(base[5]); first+n-1 <= 0xffff {
		return nil
	}
	last := net.HardwareAddr{base[0], base[1], base[2], base[3], 0xff, 0xff}
	if mac != "" {
		return usageErrorf("smolvmm bench: --mac %s with --parallel %d: VM i gets --mac + i, and %d VMs from %s would pass %s; give a lower --mac", mac, n, n, base, last)
	}
	return usageErrorf("smolvmm bench: --parallel %d on --net %s without --mac: VM i gets uid %d's own MAC + i, and %d VMs from %s would pass %s; give a --mac, the first VM's, whose last two bytes leave room for them", n, netSpec, uid, n, base, last)
}

// randomMAC is a 52:54:00 address with three random bytes, for a VM with
// nothing to derive a stable one from.
func randomMAC() net.HardwareAddr {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return net.HardwareAddr{0x52, 0x54, 0x00, b[0], b[1], b[2]}
}

// nicFailer is a backend that can fail for good while the VM runs: a
// shared network's (netback.Joined) that the network refused on
// reconnecting.
type nicFailer interface {
	Failed() <-chan struct{}
	Err() error
}

// openNIC opens the backend and makes the virtio-net device. The device
// owns the backend; closing its transport closes both. After adding it to
// the machine, call dev.SetKick with the transport's KickQueue. failer is
// the backend when it can fail for good (see watchNIC), else nil.
func openNIC(cfg netConfig) (dev *vnet.Device, failer nicFailer, err error) {
	b, err := openBackend(cfg) // jail.go
	if err != nil {
		return nil, nil, backendError(cfg.Spec, err)
	}
	dev, err = vnet.New(b, cfg.MAC)
	if err != nil {
		return nil, nil, errors.Join(err, b.Close())
	}
	failer, _ = b.(nicFailer)
	return dev, failer, nil
}

// backendError is err, from opening the backend of the network spec,
// with what to do about it.
func backendError(spec string, err error) error {
	if errors.Is(err, netback.ErrNoHub) {
		return noHubError(spec, err)
	}
	var refused *netback.RefusedError
	if errors.As(err, &refused) && refused.Reason == netback.RefusedDuplicateMAC {
		return fmt.Errorf("%w (give this VM another --mac)", err)
	}
	if errors.As(err, &refused) && refused.Reason == netback.RefusedMACOwner {
		return fmt.Errorf("%w (give this VM a --mac of its own)", err)
	}
	if errors.As(err, &refused) && refused.Reason == netback.RefusedUserLimit {
		return fmt.Errorf("%w (stop one of your VMs on that network, or start a network of your own for them: smolvmm net --name NAME, then --net user:NAME)", err)
	}
	var foreign *netback.ForeignHubError
	if errors.As(err, &foreign) {
		return fmt.Errorf("%w (%s)", err, foreignHubAdvice(foreign))
	}
	if errors.As(err, &refused) && refused.Reason == netback.RefusedNoDescriptors {
		return fmt.Errorf("%w (raise the limit of open files where smolvmm net runs: LimitNOFILE= in its systemd unit, or ulimit -n before it; or join fewer VMs)", err)
	}
	return err
}

// foreignHubAdvice says what to do about a shared network that its name
// led to, in this user's runtime directory, but that is another user's.
func foreignHubAdvice(e *netback.ForeignHubError) string {
	if e.Path == e.Socket {
		return fmt.Sprintf("another user's process listens in this user's directory %s: make sure no other user may write it, then start the network again", filepath.Dir(e.Socket))
	}
	return fmt.Sprintf("another user may have made %s to receive this user's VMs: have root remove it, or set XDG_RUNTIME_DIR to a directory of this user's; then start the network again", e.Path)
}

// noHubError is err, netback.ErrNoHub from joining the shared network
// spec (user:NAME or user:PATH) names, with the command that starts it.
func noHubError(spec string, err error) error {
	arg := strings.TrimPrefix(spec, "user:")
	start := "smolvmm net --name " + arg
	if strings.ContainsRune(arg, '/') {
		start = "smolvmm net --socket " + absPath(arg)
	}
	// A file of another kind where the socket would be: smolvmm net
	// refuses to replace it, so its start line would fail.
	sock := arg
	if !strings.ContainsRune(arg, '/') {
		sock, _ = netback.HubSocket(arg)
	}
	if st, lerr := os.Lstat(sock); sock != "" && lerr == nil && st.Mode()&os.ModeSocket == 0 {
		what := fmt.Sprintf("%s is %s, not a socket, and smolvmm net would not replace it", sock, filekind.Of(st.Mode()))
		switch {
		case !strings.ContainsRune(arg, '/'):
			return fmt.Errorf("--net %s: %w; %s: move it away, then start the network with: %s", spec, err, what, start)
		case st.IsDir():
			return fmt.Errorf("--net %s: %w; %s: give the path of a network's socket, such as %s, started with: smolvmm net --socket %[4]s", spec, err, what, filepath.Join(absPath(arg), "net.sock"))
		}
		return fmt.Errorf("--net %s: %w; %s: give the path of a running network's socket", spec, err, what)
	}
	if !strings.ContainsRune(arg, '/') {
		// A network another user (root) started with --group is in
		// that user's runtime directory, not this one's.
		if root := filepath.Join(rootHubDirFor(), arg+".sock"); root != filepath.Join(netback.HubDir(), arg+".sock") {
			if st, serr := os.Stat(root); serr == nil && st.Mode()&os.ModeSocket != 0 {
				return fmt.Errorf("--net %s: %w; root's network %s listens on %s: join it with --net user:%s, or start one of your own with: %s", spec, err, arg, root, root, start)
			}
		}
	}
	return fmt.Errorf("--net %s: %w; start it with: %s", spec, err, start)
}

// absPath is path made absolute, for advice: a relative one names
// another file from another directory, and one that starts with ~ (a
// directory named ~ here) would be expanded by the shell. path itself if
// the working directory cannot be read.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// rootHubDirFor is where root's networks listen (netback.RootHubDir); a
// variable for the tests.
var rootHubDirFor = netback.RootHubDir

// probeSharedNet connects to the shared network spec (user:NAME or
// user:PATH) names, without joining it, and returns its socket and its
// daemon's process (0 when that is not in this PID namespace). Commands
// that would boot a VM on it call it before any work: a network not
// running is said then.
func probeSharedNet(spec string) (socket string, pid int, err error) {
	socket, err = netback.ResolveHub(strings.TrimPrefix(spec, "user:"))
	if err != nil {
		return "", 0, usageErrorf("--net %s: %v", spec, err)
	}
	pid, err = netback.HubPID(socket)
	var foreign *netback.ForeignHubError
	switch {
	case errors.Is(err, netback.ErrNoHub):
		return "", 0, noHubError(spec, err)
	case errors.As(err, &foreign):
		return "", 0, fmt.Errorf("--net %s: %w (%s)", spec, err, foreignHubAdvice(foreign))
	case err != nil:
		return "", 0, fmt.Errorf("--net %s: %w", spec, err)
	}
	return socket, pid, nil
}

// watchNIC stops the VM, by cancelling its context with the backend's
// error as cause, when failer fails for good: a VM whose shared network
// refuses it on reconnecting (a host port of its -p taken meanwhile)
// would otherwise run unplugged for good. stop ends the watch and waits
// for it. A nil failer watches nothing.
func watchNIC(ctx context.Context, cancel context.CancelCauseFunc, failer nicFailer) (stop func()) {
	if failer == nil {
		return func() {}
	}
	ctx, end := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-failer.Failed():
			cancel(&nicFailedError{failer.Err()})
		case <-ctx.Done():
		}
	}()
	return func() { end(); <-done }
}

// stoppedBeforeRun is why a VM whose context ctx ended while its machine
// was made never ran its guest: the shared network's refusal when
// watchNIC stopped it (a VM set up slowly, on a loaded host, can lose its
// network and be refused before its guest runs), else the stop asked for.
func stoppedBeforeRun(ctx context.Context) error {
	var nicErr *nicFailedError
	if errors.As(context.Cause(ctx), &nicErr) {
		return nicErr
	}
	return errors.New("stopped before the guest ran")
}

// nicFailedError is why watchNIC stopped a VM.
type nicFailedError struct{ err error }

func (e *nicFailedError) Error() string { return "the VM stopped: " + e.err.Error() }
func (e *nicFailedError) Unwrap() error { return e.err }
