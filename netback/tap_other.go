//go:build !linux

package netback

import (
	"errors"
	"fmt"
)

// Tap is the tap backend; it exists only on Linux.
type Tap struct{ None }

// OpenTap fails: tap devices are supported on Linux only.
func OpenTap(name string) (*Tap, error) {
	return nil, fmt.Errorf("tap %s: %w", name, errors.New("tap networking needs Linux"))
}

// CheckTap fails as OpenTap does: tap devices are supported on Linux
// only.
func CheckTap(name string) error {
	_, err := OpenTap(name)
	return err
}

// TapFromFD fails: tap devices are supported on Linux only.
func TapFromFD(name string, fd int) (*Tap, error) {
	return nil, fmt.Errorf("tap %s: %w", name, errors.New("tap networking needs Linux"))
}
