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
// part received now, not only the new bytes.
func TestDescribeResumed(t *testing.T) {
	got := describeFile(fetch.File{Name: "rescue.tgz", Path: "/c/rescue.tgz", Size: 3 << 20, Transferred: 1 << 20,
		Action: fetch.Resumed, Duration: 1200 * time.Millisecond})
	want := "rescue.tgz: resumed, 3.0 MiB (1.0 MiB received now, 2.0 MiB kept from an earlier download) in 1.2s, SHA512 ok: /c/rescue.tgz"
	if got != want {
		t.Errorf("describeFile =\n%q\nwant\n%q", got, want)
	}
}
