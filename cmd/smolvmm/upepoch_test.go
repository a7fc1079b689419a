package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// TestUpSourceDateEpoch: up builds its image ("mkimg") with mkimg's
// default time, $SOURCE_DATE_EPOCH when set; it gave the wall clock
// always, so that two builds from the same sets and service differed in
// the superblock's times and UUID. Each run builds the image anew (it is
// removed first) and boots it on KVM with the up guest; a bad value is
// refused before any download, as mkimg refuses it.
func TestUpSourceDateEpoch(t *testing.T) {
	upNeedKVM(t)
	kernel := buildUpGuest(t)
	bin := smolvmmBin(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: gzipBytes(kernel),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	work := t.TempDir()
	cache := filepath.Join(work, "cache")
	image := filepath.Join(work, "u1.img")
	const epoch = 1700000000 // 2023-11-14T22:13:20Z
	upWith := func(value string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "up", "--mirror", srv.Mirror(), "--cache", cache, "-m", "16", "-i", image, "--net", "none", "rescue")
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+value)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		return stderr.String(), err
	}

	var first []byte
	for i, value := range []string{"1700000000", "1700000000", "2023-11-14T22:13:20Z"} {
		if err := os.Remove(image); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		stderr, err := upWith(value)
		if err != nil {
			t.Fatalf("SOURCE_DATE_EPOCH=%s: %v\n%s", value, err, stderr)
		}
		if !strings.Contains(stderr, "up: mkimg   built "+image) {
			t.Errorf("SOURCE_DATE_EPOCH=%s: the image was not built:\n%s", value, stderr)
		}
		b, err := os.ReadFile(image)
		if err != nil {
			t.Fatal(err)
		}
		// s_mkfs_time (dumpe2fs's "Filesystem created") and s_wtime.
		if len(b) < 2048 {
			t.Fatalf("SOURCE_DATE_EPOCH=%s: image of %d bytes", value, len(b))
		}
		for _, f := range []struct {
			name string
			off  int
		}{{"mkfs time", 1024 + 264}, {"write time", 1024 + 48}} {
			if got := binary.LittleEndian.Uint32(b[f.off:]); got != epoch {
				t.Errorf("SOURCE_DATE_EPOCH=%s: the superblock's %s is %d, want %d", value, f.name, got, epoch)
			}
		}
		if i == 0 {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Errorf("SOURCE_DATE_EPOCH=%s: the image differs from the first build's", value)
		}
	}

	srv.ResetLog()
	stderr, err := upWith("yesterday")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("SOURCE_DATE_EPOCH=yesterday: %v, want status 1\n%s", err, stderr)
	}
	if want := `SOURCE_DATE_EPOCH "yesterday": want Unix seconds or an RFC 3339 time`; !strings.Contains(stderr, want) {
		t.Errorf("SOURCE_DATE_EPOCH=yesterday: stderr lacks %q:\n%s", want, stderr)
	}
	if n := len(srv.Requests()); n != 0 || strings.Contains(stderr, "up: fetch") {
		t.Errorf("SOURCE_DATE_EPOCH=yesterday: %d HTTP requests before the refusal:\n%s", n, stderr)
	}
}
