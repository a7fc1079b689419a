// Package net is the virtio-net device model (legacy virtio-pci,
// subsystem 1) as NetBSD 9's vioif(4) drives it, over a Backend (netback provides the user network,
// tap and none; the device itself links no network stack).
//
// # What the guest sees
//
// Features MAC, STATUS (LINK_UP, unless a LinkBackend's link is down: a
// change raises the configuration-change interrupt) and INDIRECT_DESC; a 10-byte
// virtio_net_hdr in front of every frame (no MRG_RXBUF, no offloads, so the
// header is all zeros on receive and ignored on transmit); no control
// queue. Queue 0 receives, queue 1 transmits, each of QueueSize entries.
//
// # Receive
//
// A goroutine reads frames from the backend into a short hand-off queue
// and kicks queue 0; the transport's worker copies each frame into the
// next receive chain (header and data may be separate descriptors, as vioif
// posts them, or one buffer). When the guest has no free buffer the frame
// is kept and delivery resumes on the guest's next notify of queue 0; while
// it waits, the backend queues or drops further frames itself (the user
// network drops beyond a window, the kernel drops for a tap). A frame longer
// than the chain's writable space is dropped and counted (Stats.RxTooLong),
// the chain is kept for the next frame (until the driver resets the device
// or places the receive queue anew), and nothing is ever written past a
// buffer.
//
// # Transmit
//
// The worker goroutine (never the vCPU) copies each transmit chain, direct
// or indirect, out of guest memory, gives it back to the guest at once,
// and hands the frame without its header to a goroutine that writes it to
// the backend. A backend slow to take frames (or one that never does: a
// shared network stopped with SIGSTOP) holds up that goroutine only: once
// 64 frames or 256 KiB wait for it, the worker leaves the guest's further
// chains in the ring until it takes one, so the guest's transmit queue
// fills as before, while the worker stays free for the other queue and for
// the register writes that wait for it (a reset among them). Frames up to
// 2 KiB go round in buffers of that size, and two buffers of the largest
// frame are kept for larger ones, so that sending allocates nothing once
// running.
//
// # MAC address
//
// DefaultMAC derives a stable address from a seed (smolvmm uses the path of
// the first disk image): 52:54:00 (QEMU's locally administered prefix, which
// guests and tools already treat as a VM's) followed by three bytes of the
// seed's SHA-256. The same VM gets the same address on every run, so the
// guest's DHCP lease and any host-side configuration stay put.
package net
