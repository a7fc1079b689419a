package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/guests"
)

// TestBenchQEMUSerialAndMAC: bench --compare qemu gives QEMU's guest the
// devices smolvmm's has: each disk's serial (-d ...,serial=ID, or the one
// smolvmm derives) and the card's MAC (--mac, the one derived from the
// first disk, or without a disk one for every boot of both). The vblk and
// vnet guests print what GET_ID and the card's config space said, and
// every boot of every system must print the same; the recorded QEMU
// commands carry serial= and mac= as QEMU's -device takes them (a comma
// in a value written twice). QEMU's guests read no serial and QEMU's own
// MAC (52:54:00:12:34:56).
func TestBenchQEMUSerialAndMAC(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if _, err := exec.LookPath(bench.QEMUBinary); err != nil {
		t.Skipf("%s not installed (apt-get install qemu-system-x86)", bench.QEMUBinary)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "v.img")
	if _, err := guests.WriteVblkDisk(img); err != nil {
		t.Fatal(err)
	}
	serial := regexp.MustCompile(`vblk: serial "([^"]*)"`)
	mac := regexp.MustCompile(`vnet: mac ([0-9a-f:]+)`)
	for _, tt := range []struct {
		name   string
		guest  string
		args   []string
		line   *regexp.Regexp
		want   string // what every guest prints; "" for any one value, the same for all
		device string // in the QEMU command; "" for none checked
	}{
		{"given serial", "vblk", []string{"-a", "seq=1", "-d", img + ",ro,serial=a,,b=c", "--net", "none"}, serial, "a,b=c",
			"virtio-blk-pci,disable-modern=on,drive=disk0,serial=a,,b=c"},
		{"derived serial", "vblk", []string{"-a", "seq=1", "-d", img + ",ro", "--net", "none"}, serial, "", ""},
		{"given MAC", "vnet", []string{"--net", "user", "--mac", "52:54:00:ab:0c:01"}, mac, "52:54:00:ab:0c:01",
			"virtio-net-pci,disable-modern=on,netdev=net0,mac=52:54:00:ab:0c:01"},
		{"MAC derived from the disk", "vnet", []string{"--net", "user", "-d", img + ",ro"}, mac, "", ""},
		{"MAC without a disk", "vnet", []string{"--net", "user"}, mac, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			js := filepath.Join(t.TempDir(), "r.json")
			args := append([]string{"-k", guests.ForTest(t, tt.guest), "-n", "1", "--warmup", "0", "--console", "--compare", "qemu", "--json", js}, tt.args...)
			status, stdout, stderr := benchRun(t, nil, args...)
			if status != 0 {
				t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
			}
			res := readBenchJSON(t, js)
			qemus := 0
			for _, s := range res.Systems {
				if s.Error != "" || len(s.Boots) == 0 {
					t.Fatalf("system %s: error %q, %d boots; want its boots", s.Name, s.Error, len(s.Boots))
				}
				if !strings.HasPrefix(s.Name, "qemu") {
					continue
				}
				qemus++
				if tt.device != "" && !slices.Contains(s.Command, tt.device) {
					t.Errorf("%s's command %q lacks -device %s", s.Name, s.Command, tt.device)
				}
			}
			if qemus == 0 {
				t.Fatalf("no QEMU system ran: %+v", res.Systems)
			}
			// Every boot of every system printed it (a boot whose guest
			// failed would have failed its system).
			got := map[string]int{}
			for _, m := range tt.line.FindAllStringSubmatch(stderr, -1) {
				got[m[1]]++
			}
			want := tt.want
			if want == "" {
				for v := range got {
					want = v
				}
			}
			if len(got) != 1 || got[want] < 1+qemus || want == "" {
				t.Fatalf("the guests printed %v (times each); want %q from every boot of the %d systems; stderr:\n%s", got, want, 1+qemus, stderr)
			}
		})
	}
}
