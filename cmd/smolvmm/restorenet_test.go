package main

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/snapshot"
)

// writeNetSnapshot writes, at a new path in dir, a snapshot file whose
// header says the machine had a network card (or none) on n: all that
// restoreNet reads of it.
func writeNetSnapshot(t *testing.T, dir, name string, card bool, n snapshot.Network) string {
	t.Helper()
	nic := snapshot.NIC{}
	if card {
		nic = snapshot.NIC{Present: true, MAC: [6]byte{0x52, 0x54, 0, 0x12, 0x34, 0x56}}
	}
	var b bytes.Buffer
	if _, err := snapshot.WriteMeta(&b, snapshot.Meta{NIC: nic, Net: n}, []byte("state"), make([]byte, snapshot.PageSize), nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runRestoreNet runs restoreNet as smolvmm run does, on a command named
// run with run's network and snapshot flags given args, and returns the
// --net it leaves, its error and what it wrote to stderr: its warnings
// name the command as a user sees them ("smolvmm run: warning: ..."),
// which an app's own action named the app twice.
func runRestoreNet(t *testing.T, args ...string) (netSpec string, err error, stderr string) {
	t.Helper()
	var out bytes.Buffer
	saved := stderrOut
	stderrOut = &out
	t.Cleanup(func() { stderrOut = saved })
	app := &cli.App{
		Name: "smolvmm",
		Commands: []*cli.Command{{
			Name:  "run",
			Flags: append(netFlags(), snapshotFlags()...),
			Action: func(c *cli.Context) error {
				err = restoreNet(c)
				netSpec = c.String("net")
				return nil
			},
		}},
	}
	if rerr := app.Run(append([]string{"smolvmm", "run"}, args...)); rerr != nil {
		t.Fatal(rerr)
	}
	return netSpec, err, out.String()
}

var (
	addr15 = netback.UserGuest
	addr16 = netip.MustParseAddr("10.0.2.16")
	addr21 = netip.MustParseAddr("10.0.2.21")
)

// TestRestoreNetDefault: a restore without --net takes the network its
// snapshot records, a shared one by name (which keeps the MAC's lease),
// where it took the kind alone: a shared network's snapshot restored on
// the VM's own user network, whose forwards reach 10.0.2.15, not the
// address the guest kept. A snapshot that records none (written before
// the record) restores as before: the user network, or none without a
// card. One whose shared network's name the header holds only as a digest
// is refused with advice: no default can be right.
func TestRestoreNetDefault(t *testing.T) {
	dir := t.TempDir()
	long := "/run/user/1000/smolvmm/net/lab.sock"
	tests := []struct {
		name   string
		card   bool
		net    snapshot.Network
		want   string // the --net restoreNet leaves
		errSub string // its refusal, status 2
	}{
		{"old snapshot with a card", true, snapshot.Network{}, "user", ""},
		{"old snapshot without a card", false, snapshot.Network{}, "none", ""},
		{"own user network", true, snapshot.Network{Kind: snapshot.NetUser, Addr: addr15}, "user", ""},
		{"shared network", true, snapshot.Network{Kind: snapshot.NetShared, Name: "cb", Addr: addr16}, "user:cb", ""},
		{"shared network's socket", true, snapshot.Network{Kind: snapshot.NetShared, Name: "/tmp/n.sock", Addr: addr16}, "user:/tmp/n.sock", ""},
		// An interface that exists: nothing said (TestRestoreNetTapCreated).
		{"tap", true, snapshot.Network{Kind: snapshot.NetTap, Name: "lo"}, "tap:lo", ""},
		// A name over 16 bytes too, not only a socket's path.
		{"shared network's long name", true, snapshot.Network{Kind: snapshot.NetShared, Name: "a-lab-network-of-30-characters", Addr: addr16}, "user",
			"its VM was on a shared network whose name the snapshot records only as a digest (a name or socket path over 16 bytes), which the snapshot cannot name: give --net user:NAME for that network"},
		{"shared network named by digest", true, snapshot.Network{Kind: snapshot.NetShared, Name: long, Addr: addr16}, "user",
			"its VM was on a shared network whose name the snapshot records only as a digest (a name or socket path over 16 bytes), which the snapshot cannot name: give --net user:NAME for that network"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeNetSnapshot(t, dir, "s"+string(rune('a'+i)), tt.card, tt.net)
			got, err, stderr := runRestoreNet(t, "--restore", path)
			if tt.errSub == "" && err != nil || tt.errSub != "" && (err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tt.errSub)) {
				t.Fatalf("restoreNet = %v; want status 2 and %q", err, tt.errSub)
			}
			if got != tt.want {
				t.Errorf("--net %q; want %q", got, tt.want)
			}
			if stderr != "" {
				t.Errorf("stderr %q; want nothing", stderr)
			}
		})
	}
}

// TestRestoreNetWarning: a --net other than the snapshot's network is
// taken, with a warning on stderr that says where the guest's address
// came from, what the new network does with frames from it, and which
// --net keeps it; none for the snapshot's own network, for one that
// leases the same address, or for a snapshot that records none.
func TestRestoreNetWarning(t *testing.T) {
	dir := t.TempDir()
	user := snapshot.Network{Kind: snapshot.NetUser, Addr: addr15}
	cb16 := snapshot.Network{Kind: snapshot.NetShared, Name: "cb", Addr: addr16}
	cb15 := snapshot.Network{Kind: snapshot.NetShared, Name: "cb", Addr: addr15}
	tap := snapshot.Network{Kind: snapshot.NetTap, Name: "tap0"}
	abs, err := filepath.Abs("rel/n.sock")
	if err != nil {
		t.Fatal(err)
	}
	long := snapshot.Network{Kind: snapshot.NetShared, Name: abs, Addr: addr21}
	tests := []struct {
		name string
		snap snapshot.Network
		net  string
		want []string // in the warning; none when nil
	}{
		{"user, user", user, "user", nil},
		{"user:cb, user:cb", cb16, "user:cb", nil},
		{"tap, tap", tap, "tap:tap0", nil},
		{"not recorded, user:cb", snapshot.Network{}, "user:cb", nil},
		{"not recorded, tap", snapshot.Network{}, "tap:tap0", nil},
		// The hub leased the MAC 10.0.2.15, which the own network's
		// forwards reach: the guest's address works there.
		{"user:cb at .15, user", cb15, "user", nil},
		// A path recorded absolute, named relative.
		{"socket by digest, same path", long, "user:rel/n.sock", nil},
		// Repro A: forwards reset until the guest renews.
		{"user:cb, user", cb16, "user", []string{
			"its VM was on --net user:cb, where its guest has 10.0.2.16, and keeps it: --net user leases the card's MAC 10.0.2.15, which -p forwards connect to, so they reach the guest only once it takes 10.0.2.15, when its DHCP client next renews its lease (within 30 minutes) and is refused 10.0.2.16",
			"to keep it, restore with --net user:cb"}},
		// Repro B: offline until the hub's gateway refuses the renewal
		// (the hub passes it from an address of its pool that no other
		// MAC leases), or until the lease ends when another VM has it.
		{"user, user:cb", user, "user:cb", []string{
			"its VM was on --net user, where its guest has 10.0.2.15, and keeps it: --net user:cb leases the card's MAC an address of its own, so unless that is 10.0.2.15 the guest is offline, -p forwards too, until its DHCP client next renews its lease (within 30 minutes) and is refused 10.0.2.15, or, if another VM on that network holds 10.0.2.15, until its lease ends (within 60 minutes) (or its network is restarted inside it); to keep it, restore with --net user\n"}},
		{"user:cb, user:other", cb16, "user:other", []string{"--net user:other leases the card's MAC an address of its own, so unless that is 10.0.2.16", "is refused 10.0.2.16, or, if another VM on that network holds 10.0.2.16,", "to keep it, restore with --net user:cb"}},
		{"socket by digest, another", long, "user:/tmp/other.sock", []string{"its VM was on a shared network whose name the snapshot records only as a digest (a name or socket path over 16 bytes), where its guest has 10.0.2.21", "to keep it, restore with --net user:NAME for that network"}},
		{"tap, user", tap, "user", []string{"its VM was on --net tap:tap0, where its guest has the address that network gave it, and keeps it: --net user leases the card's MAC 10.0.2.15", "when its DHCP client next asks for its lease and is refused the address that network gave it"}},
		{"tap, user:cb", tap, "user:cb", []string{"--net user:cb leases the card's MAC an address of its own", "the guest is offline, -p forwards too, until its DHCP client next asks for its lease and is refused the address that network gave it, or, if another VM on that network holds it or it is not one that network leases, until its lease ends (or"}},
		{"user, tap", user, "tap:tap0", []string{"its VM was on --net user, where its guest has 10.0.2.15, and keeps it: the network of --net tap:tap0 did not lease it and may not route it until the guest gets another there, when its DHCP client next renews its lease (within 30 minutes)", "to keep it, restore with --net user"}},
		{"tap0, tap1", tap, "tap:tap1", []string{"the network of --net tap:tap1 did not lease it", "restore with --net tap:tap0"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeNetSnapshot(t, dir, "w"+string(rune('a'+i)), true, tt.snap)
			got, err, stderr := runRestoreNet(t, "--restore", path, "--net", tt.net)
			if err != nil || got != tt.net {
				t.Fatalf("restoreNet = %v, --net %q; want --net %q kept", err, got, tt.net)
			}
			if tt.want == nil {
				if stderr != "" {
					t.Fatalf("stderr %q; want no warning", stderr)
				}
				return
			}
			prefix := "smolvmm run: warning: --restore " + path + ": "
			if !strings.HasPrefix(stderr, prefix) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q; want one line starting %q", stderr, prefix)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q; want it to say %q", stderr, w)
				}
			}
		})
	}
}

// TestCLIRestoreNetRecorded: a snapshot taken on a shared network records
// it, with the address the network leased the card; restored without
// --net, the VM rejoins that network (its log says so), where it went to
// a user network of its own. One taken on the VM's own user network and
// restored onto the shared one runs, with the warning.
func TestCLIRestoreNetRecorded(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	dir := testsock.Dir(t)
	// A network by name, under a runtime directory of the test's own:
	// a socket's path would be recorded as its digest (over 16 bytes).
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", dir)
	sock, err := netback.HubSocket("rn")
	if err != nil {
		t.Fatal(err)
	}
	d := startNetDaemonCmd(t, exec.Command(smolvmmBin(t), "net", "--name", "rn"), sock)
	shared := filepath.Join(dir, "shared.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "user:rn", "--snapshot", shared, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	joined := d.expect(t, " joined as ")
	f, err := snapshot.OpenHeader(shared)
	if err != nil {
		t.Fatal(err)
	}
	got := f.Header.Net
	f.Close()
	_, leased, _ := strings.Cut(joined, " joined as ")
	lease, err := netip.ParseAddr(strings.Fields(leased)[0])
	if err != nil {
		t.Fatalf("hub's log %q: %v", joined, err)
	}
	if want := (snapshot.Network{Kind: snapshot.NetShared, Name: "rn", Addr: lease}); got != want {
		t.Fatalf("header's network %+v, hub's log %q; want %+v, the hub's lease", got, joined, want)
	}
	out, stderr, status := runCLI(t, "run", "--restore", shared)
	if status != 1 || !strings.HasSuffix(out, "count 5\r\ncounter: done\r\n") || stderr != "" {
		t.Fatalf("restore without --net: status %d, output %q, stderr %q; want the count to go on to 5, nothing on stderr", status, out, stderr)
	}
	if l := d.expect(t, " joined as "); !strings.Contains(l, " joined as "+lease.String()) {
		t.Fatalf("the restore joined the hub as %q; want its lease, %s", l, lease)
	}
	// A clone with a MAC of its own is leased another address, which its
	// guest, keeping the snapshot's, does not have: noted (it was cut off
	// without a word).
	out, stderr, status = runCLI(t, "run", "--restore", shared, "--mac", "52:54:00:aa:bb:01")
	l := d.expect(t, " joined as ")
	_, cloneAt, _ := strings.Cut(l, " joined as ")
	note := "smolvmm run: note: --restore " + shared + ": its guest has " + lease.String() + ", which --net user:rn leased the snapshot's MAC, and keeps it: --mac 52:54:00:aa:bb:01 joined as " + strings.Fields(cloneAt)[0] + ", so a clone is offline"
	if strings.Fields(cloneAt)[0] == lease.String() || status != 1 || !strings.HasSuffix(out, "count 5\r\ncounter: done\r\n") || !strings.HasPrefix(stderr, note) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("clone: hub's log %q, status %d, output %q, stderr %q; want another address, the count to go on to 5, and one line starting %q", l, status, out, stderr, note)
	}
	// bench --parallel's clones each have a MAC of their own: said once.
	bout, bstderr, status := runCLI(t, "bench", "--restore", shared, "--parallel", "2", "--ready", "count 4")
	note = "smolvmm bench: note: --restore " + shared + ": its guest has " + lease.String() + ", which --net user:rn leased the snapshot's MAC, and keeps it: its 2 VMs join with MACs of their own, leased other addresses, so a clone is offline"
	if status != 0 || !strings.Contains(bstderr, note) || strings.Count(bstderr, "note: --restore") != 1 {
		t.Fatalf("bench --parallel 2: status %d, stdout %q, stderr %q; want status 0 and %q once", status, bout, bstderr, note)
	}

	own := filepath.Join(dir, "own.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--snapshot", own, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run on --net user: status %d, stderr:\n%s", status, stderr)
	}
	if f, err = snapshot.OpenHeader(own); err != nil {
		t.Fatal(err)
	}
	got = f.Header.Net
	f.Close()
	if want := (snapshot.Network{Kind: snapshot.NetUser, Addr: addr15}); got != want {
		t.Fatalf("header's network %+v; want %+v", got, want)
	}
	out, stderr, status = runCLI(t, "run", "--restore", own, "--net", "user:rn")
	want := "smolvmm run: warning: --restore " + own + ": its VM was on --net user, where its guest has 10.0.2.15, and keeps it: --net user:rn leases the card's MAC an address of its own"
	if status != 1 || !strings.HasSuffix(out, "count 5\r\ncounter: done\r\n") || !strings.HasPrefix(stderr, want) {
		t.Fatalf("restore onto the shared network: status %d, output %q, stderr %q; want the count to go on to 5, stderr starting %q", status, out, stderr, want)
	}

	// The snapshot's network, stopped: the error says where --net came
	// from, and which gives the VM a network of its own.
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for range d.lines {
	}
	_, stderr, status = runCLI(t, "run", "--restore", shared)
	if want := "shared network is not running"; status != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "(--net user:rn is the network of --restore "+shared+"'s VM, taken as --net was not given: give --net user for a user network of the VM's own, or the --net you mean)") {
		t.Fatalf("restore without its network: status %d, stderr %q; want status 1, %q and where --net came from", status, stderr, want)
	}
}

// TestBenchParallelRestoreNet: bench --restore --parallel checks the
// network the snapshot gives it, not only a --net given: a snapshot taken
// on a tap, restored without --net, started one VM on the tap and failed
// the others on it (status 0), where --net tap:NAME was refused.
func TestBenchParallelRestoreNet(t *testing.T) {
	dir := t.TempDir()
	tap := writeNetSnapshot(t, dir, "tap.snap", true, snapshot.Network{Kind: snapshot.NetTap, Name: "tap7"})
	kvm := []string{"--kvm-device", filepath.Join(dir, "kvm")}
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"tap from the snapshot", []string{"--restore", tap, "--parallel", "2"}, 2,
			"smolvmm bench: --restore " + tap + ": its VM was on --net tap:tap7, which does not go with --parallel 2: a tap device takes one VM; give --net none, user or user:NAME"},
		{"tap given", []string{"--restore", tap, "--parallel", "2", "--net", "tap:tap7"}, 2, "--net tap:tap7 does not go with --parallel 2"},
		// One VM takes the tap; another network passes to the KVM device.
		{"one VM", []string{"--restore", tap, "--parallel", "1"}, 1, "KVM is not available"},
		{"another network", []string{"--restore", tap, "--parallel", "2", "--net", "user"}, 1, "KVM is not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, stdout, stderr := benchRun(t, nil, append(tt.args, kvm...)...)
			if status != tt.status || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("status %d, stderr %q; want status %d and %q", status, stderr, tt.status, tt.stderr)
			}
			if tt.status == 2 && stdout != "" {
				t.Errorf("stdout %q; want nothing started", stdout)
			}
		})
	}
}

// TestRestoreNetDamaged: a byte of the network's record flipped in a
// snapshot restored without --net is refused as the damage it is, before
// the record becomes --net: it was taken unverified, and a tap named by a
// damaged name was created (or, not as root, /dev/net/tun's permission
// error said) before the restore found the digest wrong.
func TestRestoreNetDamaged(t *testing.T) {
	dir := t.TempDir()
	tap := snapshot.Network{Kind: snapshot.NetTap, Name: "tap7", Addr: addr21}
	tests := []struct {
		name string
		off  int64
		bit  byte
	}{
		{"kind: tap to shared", 107, 0x01},
		{"address", 111, 0x04},
		{"name's first byte", 112, 0x01},
		{"name's last letter", 115, 0x08},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeNetSnapshot(t, dir, "d"+string(rune('a'+i)), true, tap)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[tt.off] ^= tt.bit
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err, stderr := runRestoreNet(t, "--restore", path)
			want := "restore: snapshot " + path + ": snapshot is corrupt: "
			if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), want) || !corruptSnapshot(err) {
				t.Fatalf("restoreNet = %v; want status 1 and %q", err, want)
			}
			if got != "user" || stderr != "" {
				t.Errorf("--net %q, stderr %q; want --net's default left, nothing said", got, stderr)
			}
		})
	}
	// A name's padding that is not zero is refused by the header's
	// check, which leaves --net to the restore's refusal.
	path := writeNetSnapshot(t, dir, "padding", true, tap)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[117] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err, _ := runRestoreNet(t, "--restore", path); err != nil || got != "user" {
		t.Fatalf("padding: restoreNet = %v, --net %q; want --net's default", err, got)
	}
	// An intact one takes its tap.
	path = writeNetSnapshot(t, dir, "intact", true, tap)
	if got, err, _ := runRestoreNet(t, "--restore", path); err != nil || got != "tap:tap7" {
		t.Fatalf("intact: restoreNet = %v, --net %q; want tap:tap7", err, got)
	}
}

// TestRestoreJoinNote: a restore that rejoins the shared network its
// snapshot records, where the card is leased another address than the
// guest keeps (a --mac clone, --parallel's VMs, or a MAC whose lease
// went to another VM), is noted: the guest was cut off without a word.
func TestRestoreJoinNote(t *testing.T) {
	cb16 := snapshot.Network{Kind: snapshot.NetShared, Name: "cb", Addr: addr16}
	delay := "until its DHCP client next renews its lease (within 30 minutes) and is refused 10.0.2.16, or, if another VM on that network holds 10.0.2.16, until its lease ends (within 60 minutes) (or its network is restarted inside it)"
	clone := ", so a clone is offline, -p forwards too, until its guest sends from its card's MAC (its driver keeps the snapshot's, read at attach) and, as the snapshot's MAC leases 10.0.2.16, its DHCP client asks again from 0.0.0.0 once its lease ends (within 60 minutes), or until its network is restarted inside it"
	had := "its guest has 10.0.2.16, which --net user:cb leased the snapshot's MAC, and keeps it: "
	tests := []struct {
		name   string
		snap   snapshot.Network
		spec   string
		mac    string
		joined netip.Addr
		clones int
		want   string
	}{
		{"same address", cb16, "user:cb", "", addr16, 0, ""},
		{"clone given the same address", cb16, "user:cb", "52:54:00:aa:bb:01", addr16, 0, ""},
		{"another address", cb16, "user:cb", "", addr21, 0, had + "the network leased the MAC 10.0.2.21 now, so the guest is offline, -p forwards too, " + delay},
		{"clone", cb16, "user:cb", "52:54:00:aa:bb:01", addr21, 0, had + "--mac 52:54:00:aa:bb:01 joined as 10.0.2.21" + clone},
		{"parallel 1", cb16, "user:cb", "", netip.Addr{}, 1, had + "its VM joins with a MAC of its own, leased another address" + clone},
		{"parallel 3", cb16, "user:cb", "", netip.Addr{}, 3, had + "its 3 VMs join with MACs of their own, leased other addresses" + clone},
		// restoreNetWarning's case.
		{"another network", cb16, "user:other", "", addr21, 0, ""},
		{"no address recorded", snapshot.Network{Kind: snapshot.NetShared, Name: "cb"}, "user:cb", "", addr21, 0, ""},
		{"own user network", snapshot.Network{Kind: snapshot.NetUser, Addr: addr15}, "user", "52:54:00:aa:bb:01", addr15, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := restoreJoinNote(tt.snap, tt.spec, tt.mac, tt.joined, tt.clones); got != tt.want {
				t.Errorf("note\n%q; want\n%q", got, tt.want)
			}
		})
	}
}

// TestRestoreNetTapCreated: a snapshot's tap that does not exist here,
// taken as --net, is created for the VM without a word: a new tap on no
// bridge, not the guest's network. Said when --net was not given.
func TestRestoreNetTapCreated(t *testing.T) {
	dir := t.TempDir()
	missing := writeNetSnapshot(t, dir, "missing", true, snapshot.Network{Kind: snapshot.NetTap, Name: "rn2nosuch0"})
	lo := writeNetSnapshot(t, dir, "lo", true, snapshot.Network{Kind: snapshot.NetTap, Name: "lo"})
	tests := []struct {
		name string
		args []string
		want string // stderr
	}{
		{"missing tap", []string{"--restore", missing},
			"smolvmm run: warning: --restore " + missing + ": its VM was on --net tap:rn2nosuch0, and there is no tap rn2nosuch0 here: it is created for the VM (and removed when it ends), on no bridge, so the guest's network is not there unless one is set up; give --net for another network\n"},
		{"missing tap given", []string{"--restore", missing, "--net", "tap:rn2nosuch0"}, ""},
		{"interface there", []string{"--restore", lo}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err, stderr := runRestoreNet(t, tt.args...)
			if err != nil || stderr != tt.want {
				t.Fatalf("restoreNet = %v, stderr %q; want %q", err, stderr, tt.want)
			}
		})
	}
}
