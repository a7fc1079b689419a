package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/fetch"
)

// TestProgressRate: the rate counts only the bytes that arrived while the
// bar was up, and appears only after a second; the first draw of a resumed
// download showed "12 GB/s".
func TestProgressRate(t *testing.T) {
	var out bytes.Buffer
	at := time.Unix(1700000000, 0)
	b := newProgressBar(&out, "rescue.tgz", 40<<20, 10<<20)
	b.now, b.start = func() time.Time { return at }, at

	at = at.Add(10 * time.Millisecond)
	b.Write(make([]byte, 1<<20))
	if d := b.describe(); d != "rescue.tgz 11.0 MiB of 40.0 MiB" {
		t.Errorf("after 10 ms: %q, want no rate yet", d)
	}
	at = at.Add(1990 * time.Millisecond)
	b.Write(make([]byte, 4<<20))
	if d := b.describe(); d != "rescue.tgz 15.0 MiB of 40.0 MiB, 2.5 MiB/s" {
		t.Errorf("after 2 s: %q, want 5 MiB in 2 s", d)
	}
	b.Close()
	for _, l := range strings.Split(out.String(), "\r") {
		if strings.Contains(l, "GB/s") || strings.Contains(l, "TB/s") {
			t.Errorf("drawn %q", l)
		}
	}
}

// TestDescribeResumed: a resumed file's line gives its whole size and the
// part received now, not only the new bytes; a download cut and continued
// in the same run is no resume of an earlier one, and says so.
func TestDescribeResumed(t *testing.T) {
	tests := []struct {
		name string
		f    fetch.File
		want string
	}{
		{"earlier run's partial", fetch.File{Size: 3 << 20, Transferred: 1 << 20, Kept: 2 << 20, Action: fetch.Resumed},
			"rescue.tgz: resumed, 3.0 MiB (1.0 MiB received now, 2.0 MiB kept from an earlier download) in 1.2s"},
		{"cut once in this run", fetch.File{Size: 3 << 20, Transferred: 3 << 20, Breaks: 1, Action: fetch.Downloaded},
			"rescue.tgz: downloaded (resumed after a break), 3.0 MiB in 1.2s"},
		{"cut three times in this run", fetch.File{Size: 3 << 20, Transferred: 3 << 20, Breaks: 3, Action: fetch.Downloaded},
			"rescue.tgz: downloaded (resumed after 3 breaks), 3.0 MiB in 1.2s"},
		{"earlier partial, then cut", fetch.File{Size: 3 << 20, Transferred: 1 << 20, Kept: 2 << 20, Breaks: 1, Action: fetch.Resumed},
			"rescue.tgz: resumed (and again after a break in this run), 3.0 MiB (1.0 MiB received now, 2.0 MiB kept from an earlier download) in 1.2s"},
	}
	for _, tt := range tests {
		f := tt.f
		f.Name, f.Path, f.Duration = "rescue.tgz", "/c/rescue.tgz", 1200*time.Millisecond
		if got, want := describeFile(f), tt.want+", SHA512 ok: /c/rescue.tgz"; got != want {
			t.Errorf("%s: describeFile =\n%q\nwant\n%q", tt.name, got, want)
		}
	}
}

// TestProgressUnknownLength: a download of no announced length (no
// Content-Length) shows the bytes received and the rate, on a bar of
// unknown length; it showed "64.0 KiB of -1 B".
func TestProgressUnknownLength(t *testing.T) {
	tests := []struct {
		name  string
		have  int64
		after time.Duration
		write int
		want  string
	}{
		{"at once", 0, 10 * time.Millisecond, 64 << 10, "rescue.tgz 64.0 KiB received"},
		{"after 2 s", 0, 2 * time.Second, 4 << 20, "rescue.tgz 4.0 MiB received, 2.0 MiB/s"},
		{"resumed", 1 << 20, 2 * time.Second, 4 << 20, "rescue.tgz 5.0 MiB received, 2.0 MiB/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			at := time.Unix(1700000000, 0)
			b := newProgressBar(&out, "rescue.tgz", -1, tt.have)
			b.now, b.start = func() time.Time { return at }, at
			at = at.Add(tt.after)
			b.Write(make([]byte, tt.write))
			if d := b.describe(); d != tt.want {
				t.Errorf("describe = %q, want %q", d, tt.want)
			}
			if m := b.bar.State().Max; m != -1 {
				t.Errorf("bar of length %d, want the unknown length -1", m)
			}
			b.Close()
			if strings.Contains(out.String(), "-1") {
				t.Errorf("drawn %q", out.String())
			}
		})
	}
}
