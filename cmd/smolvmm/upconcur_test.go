package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a log two goroutines' ups may write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUpJudgesAnotherUpsImageOnceRecorded: two ups of one service at
// once; the first put its image in place, then recorded it, and the
// second, judging it in between, found an image no record described and
// refused it, telling the user to remove the image the first was about
// to boot. The first now holds a lock beside the record from before its
// build to after the record, and the second, finding no record, waits
// for it and judges again: the image is the first's, recorded, and up to
// date.
func TestUpJudgesAnotherUpsImageOnceRecorded(t *testing.T) {
	first := newFakeUp(t)
	second := &fakeUp{srv: first.srv, cache: first.cache, svc: first.svc}
	opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
	// The cache filled and the kernel stripped, as in the report.
	if _, err := up(context.Background(), &bytes.Buffer{}, second.deps(), upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "other.img")}); err != nil {
		t.Fatal(err)
	}
	second.calls = nil
	waiting := make(chan struct{})
	upWaiting = func(string) { close(waiting) }
	defer func() { upWaiting = nil }()
	var log2 syncBuffer
	var err2 error
	done := make(chan struct{})
	d := first.deps()
	build := d.build
	d.build = func(ctx context.Context, b upBuild) (string, error) {
		msg, err := build(ctx, b)
		if err != nil {
			return msg, err
		}
		// The image is in place, its record not yet written: the
		// second up judges it now.
		go func() {
			defer close(done)
			_, err2 = up(context.Background(), &log2, second.deps(), opts)
		}()
		select {
		case <-waiting:
		case <-done:
			t.Errorf("the second up did not wait for the first's record: %v\n%s", err2, log2.String())
		}
		return msg, nil
	}
	if _, err := up(context.Background(), &bytes.Buffer{}, d, opts); err != nil {
		t.Fatal(err)
	}
	<-done
	if t.Failed() {
		return
	}
	if err2 != nil || strings.Join(second.calls, " ") != "service fetch run" {
		t.Fatalf("the second up: %v, calls %q; want the first's image run, not built\n%s", err2, second.calls, log2.String())
	}
	for _, want := range []string{"smolvmm up: waiting for ", ", which is building or recording " + opts.Image + "\n", "is up to date"} {
		if !strings.Contains(log2.String(), want) {
			t.Errorf("the second up's log lacks %q:\n%s", want, log2.String())
		}
	}
}
