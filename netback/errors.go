package netback

import "fmt"

// fmtFrameErr wraps a frame size error with the offending length.
func fmtFrameErr(err error, n int) error {
	return fmt.Errorf("%w: %d bytes (limits %d..%d)", err, n, EthernetHeaderSize, MaxFrameSize)
}
