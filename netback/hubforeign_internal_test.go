package netback

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// A network whose listening process runs as another user than the
// VM's, and not root, is refused; root's and the user's own are joined.
func TestCheckHubPeer(t *testing.T) {
	const sock = "/run/user/1000/smolvmm/net/n.sock"
	tests := []struct {
		peer, euid int
		refused    bool
	}{
		{peer: 1000, euid: 1000},
		{peer: 0, euid: 1000},
		{peer: 0, euid: 0},
		{peer: 2000, euid: 1000, refused: true},
		{peer: 1000, euid: 0, refused: true},
	}
	for _, tt := range tests {
		err := checkHubPeer(sock, tt.peer, tt.euid)
		want := fmt.Sprintf("shared network %s: shared network is another user's: the process listening on it runs as uid %d, neither this process's user (uid %d) nor root", sock, tt.peer, tt.euid)
		var fe *ForeignHubError
		switch {
		case !tt.refused && err != nil:
			t.Errorf("peer %d, euid %d: %v, want it joined", tt.peer, tt.euid, err)
		case tt.refused && (!errors.As(err, &fe) || !errors.Is(err, ErrForeignHub) || fe.UID != tt.peer || fe.Path != sock || err.Error() != want):
			t.Errorf("peer %d, euid %d: %v, want %q", tt.peer, tt.euid, err, want)
		}
	}
}

// The runtime directory where a network's name leads, and its parent,
// must be the user's or root's: under /tmp another user may have made
// them first. A socket given by a path elsewhere is not checked. Not
// being root, the test plays a user other than the directories' owner
// rather than giving them to another user.
func TestCheckHubDir(t *testing.T) {
	const other = 4321
	me := os.Geteuid()
	tests := []struct {
		name    string
		euid    int  // the user checking; -1: the directories' owner, me
		give    int  // the user given the directories (root only); -1: none
		which   int  // which directory: 0 the parent, 1 the network's
		link    bool // the network's directory is a symlink to another
		missing bool
		outside bool // the socket is given outside the runtime directory
		foreign string
		said    string
	}{
		{name: "own", euid: -1, give: -1},
		{name: "missing", euid: -1, give: -1, missing: true},
		{name: "another's parent", euid: me + 1, give: -1, which: 0, foreign: "smolvmm-U"},
		{name: "another's parent, given", euid: -1, give: other, which: 0, foreign: "smolvmm-U"},
		{name: "another's directory, given", euid: -1, give: other, which: 1, foreign: "smolvmm-U/net"},
		{name: "root's directory", euid: -1, give: 0, which: 1},
		{name: "a link", euid: -1, give: -1, link: true, said: "smolvmm-U/net is not a directory (L---------)"},
		{name: "outside, another's", euid: me + 1, give: -1, outside: true},
	}
	for _, tt := range tests {
		if tt.give >= 0 && me != 0 {
			t.Logf("%s: skipped: giving a directory to another user takes root", tt.name)
			continue
		}
		if tt.foreign != "" && tt.give < 0 && me == 0 {
			t.Logf("%s: skipped: root's directories are trusted (the case given to another user stands for it)", tt.name)
			continue
		}
		base := testsock.Dir(t)
		parent := filepath.Join(base, "smolvmm-U")
		dir := filepath.Join(parent, "net")
		if !tt.missing {
			if err := os.Mkdir(parent, 0o711); err != nil {
				t.Fatal(err)
			}
			if tt.link {
				target := filepath.Join(base, "elsewhere")
				if err := os.Mkdir(target, 0o711); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, dir); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Mkdir(dir, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		if tt.give >= 0 {
			if err := os.Lchown([]string{parent, dir}[tt.which], tt.give, tt.give); err != nil {
				t.Fatal(err)
			}
		}
		euid := tt.euid
		if euid < 0 {
			euid = me
		}
		sock := filepath.Join(dir, "n.sock")
		hubDir := dir
		if tt.outside {
			hubDir = filepath.Join(base, "other")
		}
		err := checkHubDir(sock, hubDir, euid)
		var fe *ForeignHubError
		switch {
		case tt.foreign != "":
			path := filepath.Join(base, tt.foreign)
			owner := me
			if tt.give >= 0 {
				owner = tt.give
			}
			want := fmt.Sprintf("shared network %s: shared network is another user's: its directory %s belongs to uid %d, neither this process's user (uid %d) nor root", sock, path, owner, euid)
			if !errors.As(err, &fe) || fe.Path != path || fe.UID != owner || err.Error() != want {
				t.Errorf("%s: %v, want %q", tt.name, err, want)
			}
		case tt.said != "":
			if err == nil || !strings.Contains(err.Error(), tt.said) {
				t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.said)
			}
		case err != nil:
			t.Errorf("%s: %v, want none", tt.name, err)
		}
	}
}

// useHubDir makes dir this user's HubDir for the test: root's variable,
// else XDG_RUNTIME_DIR.
func useHubDir(t *testing.T, runtime string) {
	t.Helper()
	if os.Geteuid() == 0 {
		old := rootHubDir
		rootHubDir = filepath.Join(runtime, "smolvmm", "net")
		t.Cleanup(func() { rootHubDir = old })
		return
	}
	t.Setenv("XDG_RUNTIME_DIR", runtime)
}

// A VM joins a network its name leads to only if that network is its
// user's or root's: one whose listening process runs as another user
// (the test's hook says so, as SO_PEERCRED cannot be made to lie), or
// whose runtime directory another user made, is refused before the
// VM's hello is sent, by Join and by HubPID, naming that user and what
// is theirs. Before, another user who made /tmp/smolvmm-UID/net first
// and ran a network in it got the VM's traffic, DHCP and forwards. A
// socket given by its path is the caller's choice, and is joined.
func TestJoinRefusesForeignHub(t *testing.T) {
	const other = 4321
	useHubDir(t, testsock.Dir(t))
	sock, err := HubSocket("n")
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logged []string
	h, err := NewHub(HubConfig{Socket: sock, Logf: func(f string, a ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logged = append(logged, fmt.Sprintf(f, a...))
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { h.Close() }()
	// Another path to the same network, outside the runtime directory.
	byPath := filepath.Join(testsock.Dir(t), "n.sock")
	if err := os.Symlink(sock, byPath); err != nil {
		t.Fatal(err)
	}
	defer func(f func(net.Conn) (int, error)) { hubPeerUID = f }(hubPeerUID)
	var peerUID atomic.Int64 // read by the VMs' rejoins too
	hubPeerUID = func(net.Conn) (int, error) { return int(peerUID.Load()), nil }
	mac := net.HardwareAddr{0x52, 0x54, 0, 4, 3, 2}
	tests := []struct {
		name    string
		peer    int // the listening process's user, as the hook says
		socket  string
		chown   bool   // the runtime directory is given to other (root only)
		foreign string // what is another's; "" when joined
	}{
		{name: "own", peer: os.Geteuid(), socket: sock},
		{name: "root's", peer: 0, socket: sock},
		{name: "another user's process", peer: other, socket: sock, foreign: sock},
		{name: "another user's process, by path", peer: other, socket: byPath},
		{name: "another user's directory", peer: os.Geteuid(), socket: sock, chown: true, foreign: filepath.Dir(sock)},
	}
	for _, tt := range tests {
		if tt.chown && os.Geteuid() != 0 {
			t.Logf("%s: skipped: giving a directory to another user takes root", tt.name)
			continue
		}
		if tt.chown {
			if err := os.Lchown(filepath.Dir(sock), other, other); err != nil {
				t.Fatal(err)
			}
		}
		peerUID.Store(int64(tt.peer))
		j, err := Join(tt.socket, mac, nil)
		_, pidErr := HubPID(tt.socket)
		if tt.chown {
			if err := os.Lchown(filepath.Dir(sock), os.Geteuid(), os.Getegid()); err != nil {
				t.Fatal(err)
			}
		}
		if j != nil {
			j.Close()
		}
		if tt.foreign == "" {
			if err != nil || pidErr != nil {
				t.Errorf("%s: Join: %v, HubPID: %v; want it joined", tt.name, err, pidErr)
			}
			continue
		}
		for _, err := range []error{err, pidErr} {
			var fe *ForeignHubError
			if !errors.As(err, &fe) || fe.Path != tt.foreign || fe.UID != other || fe.Socket != sock {
				t.Errorf("%s: %v; want a ForeignHubError naming uid %d and %s", tt.name, err, other, tt.foreign)
			}
		}
	}
	if n := h.Stats().VMs; n != 0 {
		t.Errorf("%d VMs joined after each left", n)
	}
	// The refused joins sent no hello: the hub has nothing to say of
	// them. The others' joins and leaves it logs.
	logMu.Lock()
	for _, l := range logged {
		if !strings.Contains(l, " joined as ") && !strings.Contains(l, " left: ") {
			t.Errorf("the hub logged %q", l)
		}
	}
	logMu.Unlock()

	// A VM joined to its own network does not rejoin another user's
	// that listens there once its own is gone; it keeps trying.
	peerUID.Store(int64(os.Geteuid()))
	j, err := Join(sock, mac, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	peerUID.Store(other)
	h.Close()
	if h, err = NewHub(HubConfig{Socket: sock}); err != nil {
		t.Fatal(err)
	}
	// Redials before the new hub listened failed for want of a socket
	// (so counting failed dials raced the new hub): wait for the refusal
	// of the new hub, then for one more redial refused the same way.
	foreign := func() (bool, error) {
		ok, err := j.Connected()
		var fe *ForeignHubError
		return !ok && errors.As(err, &fe) && fe.UID == other && fe.Path == sock, err
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ok, err := foreign(); ok {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("rejoining another user's network: %v after 20 s; want a ForeignHubError naming uid %d", err, other)
		}
	}
	waitFailedDials(t, j, j.failedDials.Load()+1)
	if ok, err := foreign(); !ok {
		t.Errorf("rejoining another user's network: %v; want a ForeignHubError naming uid %d", err, other)
	}
	select {
	case <-j.Failed():
		t.Errorf("gave up: %v", j.Err())
	default:
	}
}
