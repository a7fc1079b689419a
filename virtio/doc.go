// Package virtio implements the device side of legacy (virtio 0.9.5)
// virtio-pci as NetBSD 9 drives it: a hardened split virtqueue, the legacy
// PCI transport, and the interface device models (blk, net) plug into.
//
// # Trust
//
// Everything in guest memory is hostile. The queue reads ring entries and
// descriptors through guestmem's bounds-checked accessors (never a struct
// overlay), copies each descriptor before decoding it, and checks every
// index, address, length and direction of a whole chain before a device
// sees any of it.
//
// # Failure policy
//
// Two kinds of bad input are told apart:
//
//   - Ring corruption (an available index that jumps by more than the queue
//     size, a head or next index >= the queue size, a loop or a chain longer
//     than the queue, a descriptor outside guest memory (or in one of its
//     holes, which the guest does not see as RAM) or whose address plus
//     length overflows, an indirect descriptor without
//     VIRTIO_F_INDIRECT_DESC offered and accepted, an indirect table that
//     is malformed, nested, chained with NEXT or larger than the queue, a
//     readable descriptor after a writable one, a queue PFN whose rings
//     fall outside guest memory or touch a hole, queue registers rewritten
//     while DRIVER_OK is set). The driver's view of the ring can no longer
//     be trusted, so the device is marked broken: status bit
//     DEVICE_NEEDS_RESET (0x40) is set, a configuration-change interrupt is
//     raised, one line is logged, and the device serves nothing more until
//     the driver resets it (status 0). A well-behaved driver never gets here.
//   - Request errors (a block request with a bad sector range, an
//     unsupported type, a missing status byte, data in the wrong direction
//     for the request). Only that request fails (IOERR/UNSUPP in its status
//     byte, or a used element of length 0 when there is nowhere to put a
//     status) and the device goes on.
//
// In no case does the VMM panic; the worker also converts a panic in device
// code into the broken state, as a last line of defence. A fault on guest
// memory itself (a page of a restored guest cut from the file it maps:
// SIGBUS) is made a panic while a device serves, and breaks it the same
// way with an ErrMemoryFault, which the transport's SetOnFault handler is
// also told of. A system call that moves data to or from such a page
// fails with EFAULT instead (blk's preadv and pwritev): the device model
// returns an error wrapping ErrMemoryFault from Process, to the same end.
//
// # Clearing DRIVER_OK
//
// Only a write of 0 resets the device. A driver that clears DRIVER_OK
// without one is not taken for breaking it: virtio 1.0 forbids clearing a
// status bit, but the legacy spec says nothing of it, and NetBSD never
// does it (its set_status ORs the old status in; virtio_reset writes 0).
// The device serves nothing until DRIVER_OK is set again, and the driver
// may place queues meanwhile: a queue placed anew (a PFN write, 0
// included) restarts its indices at 0, and any chain a device kept from
// it (ChainHolder) is dropped, because its ring is gone.
//
// # The PCI command register
//
// The transport honours it as a real function does (command.go): no INTx
// while the guest has Interrupt Disable set, no queue served while Bus
// Master is clear (notifications are kept until it is set), and no BAR0
// while I/O Space is clear (the pci.Host takes it off the bus). NetBSD 9
// sets I/O Space and Bus Master when it attaches the device.
//
// # Threads
//
// Guest register accesses arrive on the vCPU thread and only change
// registers. Requests are served on one worker goroutine per device, woken by
// Kick (the VMM calls it from its ioeventfd reader; a notify write that
// reaches the bus kicks too), so disk and network I/O never run on a vCPU.
// A restored device serves nothing until the VMM calls Start, when the
// whole machine is restored: kicks until then are kept.
package virtio
