package netback

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// The shared network's wire protocol, on a Unix stream socket. The VM
// speaks first:
//
//	hello  VM -> hub:  "SMVN" | version (1 byte) | 0 | body length (2 bytes BE) | body
//	answer hub -> VM:  "SMVN" | version (1 byte) | status (1 byte) | body length (2 bytes BE) | body
//
// The hello's body is JSON {"mac": "52:54:00:..", "forwards": ["tcp:127.0.0.1:8080:80", ...]}
// (the forwards in ParseForward's syntax). The answer's is {"addr": "10.0.2.15"} with status 0,
// else {"error": "why"} with a Refusal code as status, and the hub closes the connection. A
// hello {"query": "vms"} is no VM's: it is answered {"vms": N}, the VMs joined now, and the
// connection closed (a hub that predates queries refuses it as malformed). Bodies
// are at most hubMaxBody bytes. After a status 0 each side sends Ethernet frames, each one
// preceded by its length as 4 bytes big-endian (as QEMU's stream netdev), EthernetHeaderSize to
// MaxFrameSize bytes; a length outside those bounds ends the connection.
const (
	hubMagic      = "SMVN"
	hubVersion    = 1
	hubHeaderSize = 8
	hubMaxBody    = 8192
	// hubMaxForwards bounds a hello's forwards.
	hubMaxForwards = 64
)

// Refusal is why a hub refused a VM, the status byte of its answer.
type Refusal uint8

// The refusals a hub gives.
const (
	// RefusedMalformed: the hello did not parse (bad magic, JSON, MAC
	// or forward).
	RefusedMalformed Refusal = 1
	// RefusedVersion: the hub speaks another protocol version.
	RefusedVersion Refusal = 2
	// RefusedDuplicateMAC: a VM with the same MAC is connected.
	RefusedDuplicateMAC Refusal = 3
	// RefusedForward: a port forward's host port cannot be bound
	// (another VM's forward or another program has it).
	RefusedForward Refusal = 4
	// RefusedNoAddress: every address of the pool is leased to a
	// connected VM.
	RefusedNoAddress Refusal = 5
	// RefusedClosing: the hub is shutting down.
	RefusedClosing Refusal = 6
	// RefusedNoDescriptors: the hub's process has every file descriptor
	// its RLIMIT_NOFILE allows open; it answers with one kept spare.
	RefusedNoDescriptors Refusal = 7
	// RefusedMACOwner: the MAC is leased to the VMs of another user
	// than the VM's, and the VM's is not root.
	RefusedMACOwner Refusal = 8
	// RefusedUserLimit: the VM's user has as many VMs connected as one
	// user may (half the pool's addresses; root and the network's own
	// user are not limited).
	RefusedUserLimit Refusal = 9
	// RefusedBusy: the VM's user, or all users, had as many connections
	// to the hub whose handshake was not over as it takes at once.
	RefusedBusy Refusal = 10
)

var refusalNames = map[Refusal]string{
	RefusedMalformed: "malformed hello", RefusedVersion: "unsupported protocol version",
	RefusedDuplicateMAC: "duplicate MAC", RefusedForward: "port forward refused",
	RefusedNoAddress: "no address left", RefusedClosing: "network shutting down",
	RefusedNoDescriptors: "network out of file descriptors",
	RefusedMACOwner:      "MAC leased to another user",
	RefusedUserLimit:     "too many VMs of one user",
	RefusedBusy:          "too many VMs joining at once",
}

// String is the refusal's reason in words, for messages.
func (r Refusal) String() string {
	if s, ok := refusalNames[r]; ok {
		return s
	}
	return fmt.Sprintf("refusal %d", uint8(r))
}

// Errors of Join that callers can test with errors.Is.
var (
	// ErrNoHub: nothing accepts connections on the shared network's
	// socket (no file, or a stale one): its daemon is not running.
	ErrNoHub = errors.New("shared network is not running")
	// ErrRefused is matched by every *RefusedError.
	ErrRefused = errors.New("shared network refused the VM")
	// ErrHubProtocol: the other side does not speak this protocol.
	ErrHubProtocol = errors.New("shared network protocol error")
	// ErrHubRunning: NewHub found another hub answering on its socket.
	ErrHubRunning = errors.New("a shared network is already running on this socket")
	// ErrBadNetworkName: a shared network's name is not a plain word.
	ErrBadNetworkName = errors.New("bad shared network name")
)

// RefusedError is a hub's refusal of a VM, with the hub's reason.
type RefusedError struct {
	Socket  string  // the hub's socket
	Reason  Refusal // the status byte of the hub's answer
	Message string  // the hub's own words, less the advice an older hub ended them with (hubRefusal)
}

// Error names the network's socket, the reason and the network's own
// message.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("shared network %s refused the VM: %s: %s", e.Socket, e.Reason, e.Message)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Permanent reports whether asking again cannot help, so that a VM
// reconnecting after a lost hub stops trying: its hello is malformed or
// of another version, or a host port it forwards is taken (by another VM
// or program: the VM would run without that forward, and a port freed
// later is no reason to keep a VM waiting on it), or its MAC is leased
// to another user (whose VM it is not, whenever it asks). The others pass: a
// duplicate MAC (most often the VM's own previous connection, not yet
// gone), a full pool or a user's VMs at their limit (VMs leave), a hub
// shutting down (another starts), and codes this side does not know.
func (e *RefusedError) Permanent() bool {
	switch e.Reason {
	case RefusedMalformed, RefusedVersion, RefusedForward, RefusedMACOwner:
		return true
	}
	return false
}

// handshakeError is err, met on a hub's socket during the handshake, for
// a message that names socket: without the addresses a *net.OpError
// carries, as the hub's end is the temporary path its socket was bound at
// before it was linked into place, not the one the VM dialled; and a
// timeout says how long it waited.
func handshakeError(socket string, err error) error {
	err = connError(err)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("shared network %s: handshake: %w (no answer within %v: the network's process is stopped, overloaded, or cannot accept; see its log)", socket, err, hubHandshakeTimeout)
	}
	return fmt.Errorf("shared network %s: handshake: %w", socket, err)
}

// connError is err, from a read or write of a VM's connection to a hub,
// without the connection's addresses: they name the hub's socket as it
// was bound, a temporary path gone since (listenSocket), where the VM
// knows the hub by the path it dialled. "read: connection reset by peer"
// rather than "read unix @->/tmp/.s414201771/s: read: ...", still
// wrapping the errno.
func connError(err error) error {
	var oe *net.OpError
	var se *os.SyscallError
	switch {
	case errors.As(err, &oe) && errors.As(oe.Err, &se):
		return oe.Err
	case errors.As(err, &oe):
		return fmt.Errorf("%s: %w", oe.Op, oe.Err)
	}
	return err
}

// hubVersionError is a hub answering in another protocol version.
type hubVersionError struct{ hub, vm byte }

func (e *hubVersionError) Error() string {
	return fmt.Sprintf("%v: it speaks version %d, this VM %d", ErrHubProtocol, e.hub, e.vm)
}

// Is makes errors.Is(err, ErrHubProtocol) true.
func (e *hubVersionError) Is(target error) bool { return target == ErrHubProtocol }

// permanentJoinError reports whether err, from dialing a hub, will not
// change by dialing again: a permanent refusal or another version.
func permanentJoinError(err error) bool {
	var re *RefusedError
	var ve *hubVersionError
	return errors.As(err, &re) && re.Permanent() || errors.As(err, &ve)
}

// hubHello is the body of a VM's hello, or of a query (Query set, the
// rest empty).
type hubHello struct {
	MAC      string   `json:"mac,omitempty"`
	Forwards []string `json:"forwards,omitempty"`
	// RunsAs is the uid the VM's process runs as once set up, when it
	// drops root after joining (JoinOptions.RunsAs); 0 when it stays
	// as it is. Only a root process's is believed: the privileged
	// forwards it joins with are granted to that uid's later joins of
	// the MAC (leaseStore.grant).
	RunsAs int    `json:"runs_as,omitempty"`
	Query  string `json:"query,omitempty"`
	// Rejoin says the VM joined before and lost its connection: it
	// keeps the NAT connections it had at its address (Hub.settleNAT).
	// A VM that starts says nothing, and its last run's are ended.
	Rejoin bool `json:"rejoin,omitempty"`
}

// maxUID is the highest uid a process can have: uid_t is 32 bits, and
// its highest value, (uid_t)-1, means "no uid" to the kernel.
const maxUID int64 = 1<<32 - 2

// hubQueryVMs asks how many VMs are joined.
const hubQueryVMs = "vms"

// hubAnswer is the body of a hub's answer.
type hubAnswer struct {
	Addr  string `json:"addr,omitempty"`
	Error string `json:"error,omitempty"`
	VMs   *int   `json:"vms,omitempty"` // the answer to a hubQueryVMs
}

// writeHubMessage sends one handshake message.
func writeHubMessage(w io.Writer, status byte, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if len(b) > hubMaxBody {
		return fmt.Errorf("%w: %d-byte handshake (limit %d)", ErrHubProtocol, len(b), hubMaxBody)
	}
	msg := make([]byte, hubHeaderSize, hubHeaderSize+len(b))
	copy(msg, hubMagic)
	msg[4], msg[5] = hubVersion, status
	binary.BigEndian.PutUint16(msg[6:], uint16(len(b)))
	_, err = w.Write(append(msg, b...))
	return err
}

// readHubMessage reads one handshake message: its version, status and
// body, decoded into body when the version is ours.
func readHubMessage(r io.Reader, body any) (version, status byte, err error) {
	var h [hubHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, err
	}
	if string(h[:4]) != hubMagic {
		return 0, 0, fmt.Errorf("%w: bad magic %q", ErrHubProtocol, h[:4])
	}
	n := binary.BigEndian.Uint16(h[6:])
	if n > hubMaxBody {
		return 0, 0, fmt.Errorf("%w: %d-byte handshake (limit %d)", ErrHubProtocol, n, hubMaxBody)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, 0, err
	}
	if h[4] != hubVersion {
		return h[4], h[5], nil
	}
	if err := json.Unmarshal(b, body); err != nil {
		return h[4], h[5], fmt.Errorf("%w: handshake body: %w", ErrHubProtocol, err)
	}
	return h[4], h[5], nil
}

// writeFramed sends frame with its 4-byte length.
func writeFramed(w io.Writer, frame []byte) error {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(frame)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(frame)
	return err
}

// readFramed reads one length-prefixed frame into buf, growing it up to
// MaxFrameSize; a length out of bounds is a protocol error.
func readFramed(r *bufio.Reader, buf []byte) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return buf, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n < EthernetHeaderSize || n > MaxFrameSize {
		return buf, fmt.Errorf("%w: %d-byte frame (limits %d..%d)", ErrHubProtocol, n, EthernetHeaderSize, MaxFrameSize)
	}
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// HubSocket is where the shared network called name listens: NAME.sock in
// HubDir (/run/smolvmm/net/NAME.sock for root, else
// $XDG_RUNTIME_DIR/smolvmm/net/NAME.sock, or, without XDG_RUNTIME_DIR,
// /tmp/smolvmm-UID/net/NAME.sock). A name is 1 to 64 letters, digits, '.',
// '_' or '-', not starting with '.'.
func HubSocket(name string) (string, error) {
	if err := checkNetworkName(name); err != nil {
		return "", err
	}
	return filepath.Join(HubDir(), name+".sock"), nil
}

// HubLeases is the default lease file of a hub listening on socket: the
// socket's path with ".leases" for its ".sock" suffix.
func HubLeases(socket string) string {
	return strings.TrimSuffix(socket, ".sock") + ".leases"
}

// ResolveHub turns the ARG of a "user:ARG" spec into a socket path: ARG
// itself when it contains a '/', else HubSocket(ARG).
func ResolveHub(arg string) (string, error) {
	if strings.ContainsRune(arg, '/') {
		return arg, nil
	}
	return HubSocket(arg)
}

func checkNetworkName(name string) error {
	ok := name != "" && len(name) <= 64 && name[0] != '.'
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("%w %q: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'", ErrBadNetworkName, name)
	}
	return nil
}

// parseHello checks a hello's body: a unicast MAC that is not the
// gateway's, at most hubMaxForwards well-formed forwards, and a uid to
// run as (RunsAs) that a process can have.
func parseHello(h hubHello) (net.HardwareAddr, []Forward, error) {
	if h.RunsAs < 0 || int64(h.RunsAs) > maxUID {
		return nil, nil, fmt.Errorf("runs_as %d is not a uid (0 to %d)", h.RunsAs, maxUID)
	}
	mac, err := net.ParseMAC(h.MAC)
	if err != nil || len(mac) != 6 {
		return nil, nil, fmt.Errorf("MAC %q is not a 6-byte Ethernet address", h.MAC)
	}
	if err := checkVMMAC(mac); err != nil {
		return nil, nil, err
	}
	if len(h.Forwards) > hubMaxForwards {
		return nil, nil, fmt.Errorf("%d port forwards (at most %d)", len(h.Forwards), hubMaxForwards)
	}
	var fs []Forward
	for _, s := range h.Forwards {
		f, err := ParseForward(s)
		if err != nil {
			return nil, nil, err
		}
		fs = append(fs, f)
	}
	return mac, fs, nil
}

// checkVMMAC refuses a MAC no VM may join with: multicast (broadcast
// too), all zero, or the gateway's.
func checkVMMAC(mac net.HardwareAddr) error {
	switch {
	case mac[0]&1 != 0:
		return fmt.Errorf("MAC %s is multicast, which no NIC has as its own", mac)
	case bytes.Equal(mac, make([]byte, len(mac))):
		return fmt.Errorf("MAC %s is all zero, which no NIC has as its own", mac)
	case bytes.Equal(mac, UserGatewayMAC):
		return fmt.Errorf("MAC %s is the gateway's", mac)
	}
	return nil
}

// hubAddr parses an answer's address: one of the subnet's.
func hubAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !UserSubnet.Contains(a) {
		return netip.Addr{}, fmt.Errorf("%w: leased address %q is not in %s", ErrHubProtocol, s, UserSubnet)
	}
	return a, nil
}
