package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/netback"
)

// brokerZonesChild marks the test binary run by TestBrokerHostFilesZones
// in a mount namespace of its own, whose /etc/resolv.conf is the test's.
const brokerZonesChild = "SMOLVMM_TEST_BROKER_ZONES"

// brokerZonesResolvConf is the resolv.conf the child sees: NetworkManager's
// zoned nameserver on lo (which every host has), one on an interface
// there is none of, one by its index.
const brokerZonesResolvConf = "nameserver fe80::1%lo\nnameserver fe80::2%nosuchif0\nnameserver fe80::3%4\nnameserver 192.0.2.53\n"

// TestBrokerHostFilesZones: a shared network's broker, under its filter,
// answers 'r' with the interface index of each zone resolv.conf's
// nameservers name (read from /sys/class/net: its daemon's filter
// refuses the netlink socket the net package would ask), lo's as the
// net package finds it; a zone naming no interface, or a number, is not
// in it; without the content, no zones. The broker reads the fixed
// /etc/resolv.conf, so the test runs itself in a mount namespace where
// that is a file of its own.
func TestBrokerHostFilesZones(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the seccomp filter is linux/amd64's")
	}
	if os.Getenv(brokerZonesChild) == "1" {
		brokerZonesCheck(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to bind-mount a resolv.conf over /etc/resolv.conf in a mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("needs util-linux's unshare: %v", err)
	}
	if _, err := net.InterfaceByName("lo"); err != nil {
		t.Skipf("no interface lo: %v", err)
	}
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte(brokerZonesResolvConf), 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The bind mount follows /etc/resolv.conf if it is a symlink; the
	// namespace's propagation is private, the host's /etc untouched.
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/resolv.conf && exec "$2" -test.run='^TestBrokerHostFilesZones$' -test.count=1 -test.v`,
		"sh", conf, exe)
	cmd.Env = append(os.Environ(), brokerZonesChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestBrokerHostFilesZones") {
		t.Fatalf("in a mount namespace: %v\n%s", err, out)
	}
}

// brokerZonesCheck is TestBrokerHostFilesZones in its mount namespace.
func brokerZonesCheck(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	b := startTestBroker(t, true)
	got, err := b.hostFiles(true)
	if err != nil {
		t.Fatalf("hostFiles(true): %v", err)
	}
	if string(got.ResolvConf.Content) != brokerZonesResolvConf {
		t.Fatalf("resolv.conf as the broker read it: %q, want the test's %q", got.ResolvConf.Content, brokerZonesResolvConf)
	}
	if want := map[string]int{"lo": lo.Index}; fmt.Sprint(got.Zones) != fmt.Sprint(want) {
		t.Errorf("zones %v, want %v", got.Zones, want)
	}
	got, err = b.hostFiles(false)
	if err != nil || got.Zones != nil {
		t.Errorf("hostFiles(false): zones %v, %v; want none", got.Zones, err)
	}
}

// TestParseHostFilesZones: an 'r' answer's zones are read back as laid
// out; too many, a name empty, longer than an interface's or given
// twice, an index of 0, a zone cut short, or zones without the content
// asked for, are refused.
func TestParseHostFilesZones(t *testing.T) {
	files := netback.HostFiles{
		ResolvConf: netback.HostFile{Stamp: netback.HostFileStamp{Present: true, Ino: 3, Size: 26}, Content: []byte("nameserver fe80::1%wlp2s0\n")},
		Zones:      map[string]int{"wlp2s0": 3, "lo": 1},
	}
	data := hostFilesData(files)
	got, err := parseHostFiles(data, true)
	if err != nil || fmt.Sprint(got.Zones) != fmt.Sprint(files.Zones) || string(got.ResolvConf.Content) != string(files.ResolvConf.Content) {
		t.Errorf("parseHostFiles(hostFilesData(%+v)) = %+v, %v", files, got, err)
	}
	if got, err := parseHostFiles(hostFilesData(netback.HostFiles{}), true); err != nil || got.Zones != nil {
		t.Errorf("no zones: %v, %v; want none", got.Zones, err)
	}
	// The zones' part, laid out by hand: after two empty files.
	empty := hostFilesData(netback.HostFiles{})
	files0 := empty[:len(empty)-1]
	zone := func(name string, index byte) []byte {
		return append(append([]byte{byte(len(name))}, name...), index, 0, 0, 0)
	}
	var many []byte
	for i := range netback.MaxHostZones + 1 {
		many = append(many, zone(fmt.Sprintf("if%d", i), 1)...)
	}
	for _, tt := range []struct {
		name  string
		zones []byte
	}{
		{"none given", nil},
		{"too many", append([]byte{netback.MaxHostZones + 1}, many...)},
		{"an empty name", append([]byte{1}, zone("", 1)...)},
		{"a name too long", append([]byte{1}, zone("sixteen-bytes-ab", 1)...)},
		{"a name twice", append(append([]byte{2}, zone("lo", 1)...), zone("lo", 2)...)},
		{"index 0", append([]byte{1}, zone("lo", 0)...)},
		{"cut short", append([]byte{1}, zone("lo", 1)[:5]...)},
		{"fewer than said", append([]byte{2}, zone("lo", 1)...)},
		{"more than said", append(append([]byte{1}, zone("lo", 1)...), zone("eth0", 2)...)},
	} {
		if _, err := parseHostFiles(append(append([]byte(nil), files0...), tt.zones...), true); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	withZones := append(append([]byte(nil), files0...), append([]byte{1}, zone("lo", 1)...)...)
	if _, err := parseHostFiles(withZones, true); err != nil {
		t.Errorf("one zone: %v", err)
	}
	if _, err := parseHostFiles(withZones, false); err == nil {
		t.Error("zones without the content asked for: no error")
	}
}
