package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// smaps builds smaps text from "start-end perms path rss" rows.
func smaps(rows ...string) string {
	var b strings.Builder
	for _, r := range rows {
		f := strings.Fields(r)
		path := ""
		if f[2] != "-" {
			path = f[2]
		}
		fmt.Fprintf(&b, "%s %s 00000000 00:00 0          %s\nSize:  1 kB\nRss:   %s kB\nVmFlags: rd wr mr mw me ac\n", f[0], f[1], path, f[3])
	}
	return b.String()
}

func TestOverhead(t *testing.T) {
	const guest = 128 << 20
	tests := []struct {
		name    string
		smaps   string
		want    Memory
		wantErr string
	}{
		{"exact mapping", smaps(
			"00400000-00800000 r-xp /usr/bin/vmm 3000",
			"7f0000000000-7f0008000000 rw-p - 2048",
			"7f0010000000-7f0010100000 rw-p - 900",
			"7fff00000000-7fff00021000 rw-p [stack] 100"),
			Memory{RSSKiB: 6048, GuestRAMKiB: 131072, GuestRSSKiB: 2048, GuestMappingKiB: 131072, OverheadKiB: 4000, FileRSSKiB: 3000}, ""},
		{"merged with a 132 KiB neighbour", smaps(
			"00400000-00800000 r-xp /usr/bin/vmm 3000",
			"7f0000000000-7f0008021000 rw-p - 40",
			"7f0010000000-7f0018000000 r--p - 5"),
			Memory{RSSKiB: 3045, GuestRAMKiB: 131072, GuestRSSKiB: 40, GuestMappingKiB: 131204, OverheadKiB: 3005, FileRSSKiB: 3000}, ""},
		{"exact wins over merged", smaps(
			"7f0000000000-7f0008021000 rw-p - 40",
			"7f0010000000-7f0018000000 rw-p - 7"),
			Memory{RSSKiB: 47, GuestRAMKiB: 131072, GuestRSSKiB: 7, GuestMappingKiB: 131072, OverheadKiB: 40}, ""},
		{"file mapping of the size is not RAM", smaps("7f0000000000-7f0008000000 rw-p /dev/shm/x 10"), Memory{}, "no anonymous read-write mapping"},
		{"read-only mapping is not RAM", smaps("7f0000000000-7f0008000000 r--p - 10"), Memory{}, "no anonymous read-write mapping"},
		{"two candidates", smaps("7f0000000000-7f0008000000 rw-p - 1", "7f0010000000-7f0018000000 rw-p - 1"), Memory{}, "cannot tell which"},
		{"bad header", "zz-10 rw-p 0 0 0\n", Memory{}, `start address "zz"`},
		{"short header", "10-20 rw-p\n", Memory{}, "at least 5"},
		{"key first", "Rss: 4 kB\n", Memory{}, "before any mapping header"},
		{"bad rss", "10-20 rw-p 0 00:00 0\nRss: x kB\n", Memory{}, `Rss "x"`},
		{"end below start", "20-10 rw-p 0 00:00 0\n", Memory{}, "below start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maps, err := ParseSmaps(strings.NewReader(tt.smaps))
			var got Memory
			if err == nil {
				got, err = Overhead(maps, guest)
			}
			checkResult(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestReadMemorySelf(t *testing.T) {
	maps, err := ParseSmaps(mustOpen(t, "/proc/self/smaps"))
	if err != nil {
		t.Fatal(err)
	}
	var rss int64
	for _, m := range maps {
		rss += m.RSSKiB
	}
	if len(maps) < 5 || rss < 1024 {
		t.Errorf("%d mappings, %d KiB resident: /proc/self/smaps misread", len(maps), rss)
	}
	if _, err := ReadMemory(os.Getpid(), 3<<30+12345); err == nil || !strings.Contains(err.Error(), "guest RAM") {
		t.Errorf("error %v, want no guest RAM mapping", err)
	}
}

// mustOpen fails rather than skips: the memory sample reads the same file.
func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func ExampleOverhead() {
	text := `00400000-00c00000 r-xp 00000000 fe:00 123 /usr/bin/smolvmm
Rss:                3072 kB
7f0000000000-7f0008000000 rw-p 00000000 00:00 0
Rss:                  64 kB
c000000000-c000400000 rw-p 00000000 00:00 0
Rss:                1024 kB
`
	maps, _ := ParseSmaps(strings.NewReader(text))
	m, err := Overhead(maps, 128<<20)
	fmt.Println(m.RSSKiB, m.GuestRSSKiB, m.OverheadKiB, m.FileRSSKiB, err)
	// Output: 4160 64 4096 3072 <nil>
}

// checkResult fails t when err does not contain wantErr (when set), or
// when a call that should succeed failed or returned other than want.
func checkResult[T comparable](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
