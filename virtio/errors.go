package virtio

import "errors"

// ErrRing is wrapped by every error that means the driver corrupted a
// queue (see the package documentation's failure policy): the transport
// marks the device broken when Process returns one.
var ErrRing = errors.New("virtqueue violation")

// ErrNotReady is returned by Pop and Push on a queue the driver has not set
// up (PFN 0).
var ErrNotReady = errors.New("virtqueue not set up")
