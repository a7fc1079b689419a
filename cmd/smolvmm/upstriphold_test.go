package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUpHoldsStrippedKernel: the stripped kernel up boots is held (a
// shared lock a newer smolvmm's removal of older revisions' copies
// respects) while up runs it, and released once up returns.
func TestUpHoldsStrippedKernel(t *testing.T) {
	f := newFakeUp(t)
	d := f.deps()
	held := false
	d.run = func(ctx context.Context, kernel, image string) error {
		k, err := os.Open(kernel)
		if err != nil {
			return err
		}
		defer k.Close()
		held = errors.Is(unix.Flock(int(k.Fd()), unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK)
		return nil
	}
	res, err := up(context.Background(), &bytes.Buffer{}, d, upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")})
	if err != nil {
		t.Fatal(err)
	}
	if !held {
		t.Error("the stripped kernel was not held while up ran it")
	}
	k, err := os.Open(res.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := unix.Flock(int(k.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("the stripped kernel is still held once up returned: %v", err)
	}
}
