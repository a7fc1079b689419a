//go:build !linux

package netback

import "errors"

// peerPID is not implemented here: SO_PEERCRED is Linux's.
func peerPID(int) (int, error) {
	return 0, errors.New("peer credentials are only read on Linux")
}
