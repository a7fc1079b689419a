package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/sandbox"
)

// TestRejoinObstacle: what keeps a VMM that drops its user or changes its
// root from reaching its shared network's socket again, read from the
// modes and paths: a socket of mode 0600, a directory on the way it may not
// search, a root directory without the socket's path; nothing for a socket
// the uid or its group may write, or a VMM that stays root without chroot.
func TestRejoinObstacle(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the files are given to other owners")
	}
	top := testsock.Dir(t)
	// socketDir's directory is 0700: open it and those above.
	for d := top; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	listen := func(name string, mode os.FileMode, gid int) string {
		p := filepath.Join(top, name)
		ln, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 0, gid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	private := listen("private.sock", 0o600, 0)
	group := listen("group.sock", 0o660, 1)
	closed := filepath.Join(top, "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(closed, "n.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.Chmod(filepath.Join(closed, "n.sock"), 0o666)
	jail := filepath.Join(top, "jail")
	if err := os.Mkdir(jail, 0o755); err != nil {
		t.Fatal(err)
	}
	// A root directory below one the uid may not search (the VMM
	// chroots as root, so never passes it again), with the socket open
	// to all; and a root directory the uid may not search itself.
	deepJail := filepath.Join(closed, "jail")
	shutJail := filepath.Join(top, "shutjail")
	for d, mode := range map[string]os.FileMode{deepJail: 0o755, shutJail: 0o700} {
		if err := os.Mkdir(d, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, mode)
		l, err := net.Listen("unix", filepath.Join(d, "n.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		os.Chmod(filepath.Join(d, "n.sock"), 0o666)
	}
	daemon := &sandbox.Credentials{UID: 1, GID: 1}
	other := &sandbox.Credentials{UID: 2, GID: 2}
	tests := []struct {
		name   string
		socket string
		creds  *sandbox.Credentials
		chroot string
		why    string // in the obstacle, "" for none
		hidden bool
	}{
		{"socket 0600 root", private, daemon, "", "uid 1 gid 1 may not connect to " + private + " (mode 0600, owner uid 0 gid 0)", false},
		{"socket of the uid's group", group, daemon, "", "", false},
		{"socket of another group", group, other, "", "uid 2 gid 2 may not connect to " + group + " (mode 0660, owner uid 0 gid 1)", false},
		{"directory not searchable", filepath.Join(closed, "n.sock"), daemon, "", "uid 1 gid 1 may not search " + closed + " (mode 0700, owner uid 0 gid 0)", false},
		{"root stays root", private, nil, "", "", false},
		{"chroot hides the socket", group, nil, jail, "with --chroot " + jail + " as its root it will see no " + group + " (" + filepath.Join(jail, group) + " does not exist)", true},
		{"chroot and user", private, daemon, jail, "will see no " + private, true},
		{"chroot below a shut directory", "/n.sock", daemon, deepJail, "", false},
		{"chroot dotdot stays inside", "/../n.sock", daemon, deepJail, "", false},
		{"chroot itself shut", "/n.sock", daemon, shutJail, "uid 1 gid 1 may not search " + shutJail + " (mode 0700, owner uid 0 gid 0)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rejoinObstacle(tt.socket, tt.creds, tt.chroot)
			if (tt.why == "") != (got.why == "") || !strings.Contains(got.why, tt.why) || got.hidden != tt.hidden {
				t.Errorf("rejoinObstacle = %+v, want why containing %q, hidden %v", got, tt.why, tt.hidden)
			}
		})
	}
}

// TestCLISharedNetworkRejoinNotices: without -v, a VM on a shared network
// says on standard error (not on the console's stdout) that it lost the
// network, that it cannot rejoin when the reason will last, and that it
// rejoined; a VM that drops to a user the socket shuts out is warned at
// its start.
func TestCLISharedNetworkRejoinNotices(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: --user")
	}
	dir := testsock.Dir(t)
	for d := dir; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		net    []string // smolvmm net's flags beyond --socket
		vm     []string // run's beyond the network
		warn   bool     // warned at the start
		rejoin bool     // rejoins after the restart, else cannot
	}{
		{"root", nil, nil, false, true},
		{"user the socket lets in", []string{"--group", "daemon"}, []string{"--user", "daemon"}, false, true},
		{"user the socket shuts out", nil, []string{"--user", "daemon"}, true, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socket := filepath.Join(dir, "n"+string(rune('0'+i))+".sock")
			mac := "52:54:00:aa:cc:0" + string(rune('1'+i))
			d := startNetDaemon(t, socket, tt.net...)
			// The vblk guest prints once the VMM is contained (its
			// user dropped), then hangs.
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(img, make([]byte, 1<<20), 0o666); err != nil {
				t.Fatal(err)
			}
			vm := exec.Command(smolvmmBin(t), append([]string{"run", "-k", guests.ForTest(t, "vblk"), "-m", "32", "-d", img,
				"-a", "seq=7 sector=5 hang", "--net", "user:" + socket, "--mac", mac}, tt.vm...)...)
			pipe, err := vm.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			outPipe, err := vm.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := vm.Start(); err != nil {
				t.Fatal(err)
			}
			var stdout strings.Builder
			flushed, outDone := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(outDone)
				sc := bufio.NewScanner(outPipe)
				for sc.Scan() {
					stdout.WriteString(sc.Text() + "\n")
					if strings.Contains(sc.Text(), "vblk: flush ok") {
						close(flushed)
					}
				}
			}()
			lines := make(chan string, 100)
			go func() {
				sc := bufio.NewScanner(pipe)
				for sc.Scan() {
					lines <- strings.TrimSuffix(sc.Text(), "\r")
				}
				close(lines)
			}()
			t.Cleanup(func() { vm.Process.Kill(); vm.Wait() })
			var seen []string
			expect := func(want string) {
				t.Helper()
				timeout := time.After(30 * time.Second)
				for {
					select {
					case l, ok := <-lines:
						if !ok {
							t.Fatalf("the VM's stderr ended before %q:\n%s", want, strings.Join(seen, "\n"))
						}
						seen = append(seen, l)
						if strings.Contains(l, want) {
							return
						}
					case <-timeout:
						t.Fatalf("no %q on the VM's stderr within 30 s:\n%s", want, strings.Join(seen, "\n"))
					}
				}
			}
			d.expect(t, "VM "+mac+" joined as")
			select {
			case <-flushed:
			case <-outDone:
				t.Fatalf("the guest ended before it flushed: %q", stdout.String())
			case <-time.After(60 * time.Second):
				t.Fatal("the guest did not flush within 60 s")
			}
			d.cmd.Process.Kill()
			d.cmd.Wait()
			expect("smolvmm: shared network " + socket + " lost (")
			startNetDaemon(t, socket, tt.net...)
			if tt.rejoin {
				expect("smolvmm: rejoined shared network " + socket + " as 10.0.2.")
			} else {
				expect("smolvmm: shared network " + socket + ": cannot rejoin: ")
			}
			vm.Process.Signal(syscall.SIGTERM)
			for l := range lines {
				seen = append(seen, l)
			}
			<-outDone
			vm.Wait()
			all := strings.Join(seen, "\n")
			const warning = "smolvmm run: warning: --net user:"
			if got := strings.Count(all, warning); got != map[bool]int{true: 1}[tt.warn] {
				t.Errorf("%d start warnings, want %v:\n%s", got, tt.warn, all)
			}
			if tt.warn && !strings.Contains(all, "may not connect to "+socket+" (mode 0600, owner uid 0 gid 0)") {
				t.Errorf("the warning does not say why:\n%s", all)
			}
			if tt.warn && !strings.Contains(all, "--user drops daemon's supplementary groups") {
				t.Errorf("the warning does not say --user drops the supplementary groups:\n%s", all)
			}
			if !tt.rejoin && (!strings.Contains(all, "permission denied") || strings.Count(all, "cannot rejoin") != 1) {
				t.Errorf("want one cannot-rejoin line, for the permission denied:\n%s", all)
			}
			if strings.Contains(stdout.String(), "shared network") {
				t.Errorf("the notices reached the console's stdout: %q", stdout.String())
			}
		})
	}
}

// TestRejoinAdvice: the warning's advice names the one group a --group
// network can let the VMM in by, its primary group (--user drops the
// supplementary ones, so naming a group the user is only a member of
// would not help), and the --uid/--gid way round; for --uid, --gid's.
func TestRejoinAdvice(t *testing.T) {
	tests := []struct {
		name  string
		user  string
		creds *sandbox.Credentials
		want  []string
	}{
		{"user", "postgres", &sandbox.Credentials{UID: 101, GID: 104}, []string{"--user drops postgres's supplementary groups", "smolvmm net --group 104, its primary group,", "--uid 101 --gid GID, GID the socket's group"}},
		{"uid", "", &sandbox.Credentials{UID: 5, GID: 7}, []string{"keeps only --gid's group", "smolvmm net --group 7 lets it connect", "give --gid the socket's group"}},
		{"stays", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rejoinAdvice(tt.user, tt.creds)
			if tt.want == nil && got != "" {
				t.Errorf("advice %q, want none", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("advice %q lacks %q", got, w)
				}
			}
			if strings.Contains(got, "users of GROUP") {
				t.Errorf("advice %q still says the group's users connect", got)
			}
		})
	}
}
