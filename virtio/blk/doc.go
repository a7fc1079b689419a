// Package blk is the virtio block device (legacy virtio-blk) over a raw
// image, as NetBSD's ld(4) drives it.
//
// # Requests
//
// IN (0), OUT (1), FLUSH (4) and GET_ID (8) are served, and the legacy
// FLUSH_OUT (5) as a FLUSH; the legacy BARRIER flag (0x80000000) is taken on
// any of them and asks nothing more, as requests complete in order. Any
// other type, with or without the flag, is answered UNSUPP. A request is a 16-byte header (type, reserved, sector)
// in the device-readable buffers, then data (readable for OUT, writable for
// IN and GET_ID), then a one-byte status in the last writable byte. ld(4)
// puts each in its own descriptor; merged layouts are accepted as well,
// because the request is read as two byte streams (readable, writable) and
// not by descriptor position. Data lengths must be multiples of 512; a
// sector range past the end of the image or overflowing 64 bits is answered
// IOERR and never performed, as is a request of more than MaxRequest bytes
// (SEG_MAX segments of SIZE_MAX: the data of one request stays bounded
// even when a guest points every descriptor of a chain at the same large
// buffer); writes to a read-only disk are answered IOERR. So is data in
// the wrong direction, and nothing is done: readable bytes after the
// header of an IN, or writable bytes besides the status byte of an OUT.
// A chain with no writable byte has nowhere to put a status: it is returned
// with length 0 and nothing is done.
//
// # Features
//
// SIZE_MAX (advisory per segment; only the request's total is bounded), SEG_MAX (32: NetBSD
// allocates an indirect table of SEG_MAX+2 entries per request, and 32
// covers a 64 KiB MAXPHYS transfer over 17 pages), FLUSH, RO for read-only
// disks, and INDIRECT_DESC. BLK_SIZE and GEOMETRY are not offered: sectors
// are 512 bytes. The queue has 128 entries (at most 126 = size - 2 would be
// allowed for SEG_MAX).
//
// # Cache semantics
//
// Writes go to the host page cache (pwrite, no O_DIRECT) and complete as
// soon as the kernel has them: they survive the VMM being killed, but not a
// host crash or power loss. They are durable once a FLUSH the guest issued
// after them completes: FLUSH calls fdatasync on the image and only then
// writes the status byte (see Failed flushes). This is a volatile write cache with flush, the
// model every guest file system knows (NetBSD issues FLUSH for its
// metadata barriers); reads may come from the page cache. The
// configuration says so: its writeback byte (offset 32) reads 1, which
// NetBSD's ld(4) reports as the write cache enabled; CONFIG_WCE is not
// offered, so the cache cannot be turned off.
//
// # Failed flushes
//
// Linux reports a failed writeback once per open file: after an fdatasync
// that failed (ENOSPC, EIO), the pages it could not write count as clean,
// the next fdatasync succeeds, and their data reads back stale once the
// page cache drops them. So the first FLUSH that fails is latched
// (FlushError): it and every later FLUSH are answered IOERR until the
// image is opened again, and the disk warns once, naming the image. Later
// flushes still run fdatasync, so that later writes reach the disk when
// they can, but none is answered OK: what the failed one covered may be
// lost. Reads and writes are served as before: a write's OK never meant
// durable, only a flush's does. A driver reset (Reset) keeps the latch.
// A snapshot does not record it (it holds the transport's state and the
// image's identity, not the disk's): a restored VM opens the image again
// and starts without one, a fresh open file whose fdatasync reports only
// what fails from then on. The guest that saw the failed flush was told
// of it; a restored copy of it learns nothing, so a caller that snapshots
// should check FlushError first: vmm's Machine.Snapshot refuses a machine
// one of whose disks has a failed flush.
//
// A read-only disk's FLUSH is answered OK without fdatasync and never
// latches: nothing was written through it, and an image on a file system
// without fsync (squashfs, iso9660, where fdatasync fails with EINVAL)
// would otherwise fail every flush the guest sends (NetBSD's ld(4)
// flushes on unmount) and so refuse every snapshot.
//
// # Host errors
//
// A read, write or flush that fails on the host (ENOSPC, EDQUOT, EIO, an
// image shrunk under the disk) is answered IOERR, all the guest learns
// (NetBSD prints "ld0a: error writing fsbn ..."). The disk also warns on
// the transport's logger (virtio.Warner), once per operation and errno,
// with the image's path, the byte offset, the length and the error; a
// failed flush once, as it is latched (see Failed flushes). Of an image
// shrunk under the disk, a read past its new end fails, and so does every
// write while the file is shorter than when it was opened (fstat before
// each write): written past the end, pwrite would grow the file again
// around a hole, and what was cut off would read back as zeros.
//
// # Counters
//
// Stats counts the writes the disk performed and their bytes, so that a
// caller that throws the image away after the run (a temporary one) can
// say whether the guest wrote to it.
//
// # Locking
//
// Open takes an flock on the image: exclusive (LOCK_EX|LOCK_NB) for a
// read-write disk, shared (LOCK_SH|LOCK_NB) for a read-only one, so two VMs
// can share a read-only image but never write one another's.
//
// QEMU (2.10 on) locks its images otherwise, with OFD byte-range read
// locks (fcntl F_OFD_SETLK), which on Linux never conflict with an flock:
// byte 100+p for each permission p it holds and 200+p for each it shares
// with no one, p being 0 for reading and 1 for writing. So Open takes
// them too, as QEMU does for a raw drive without share-rw: 100 and 201
// (it reads the image and lets no one else write it), and 101 for a
// read-write disk (it writes it). Then it looks, as QEMU does, for
// another open file description's lock (F_OFD_GETLK) on 101 (someone
// writes the image), 200 (no one else may read it) and, for a read-write
// disk, 201 (no one else may write it), and refuses the image
// (ErrInUse) naming the holder: /proc/locks lists OFD locks under no
// process, so it is looked for in /proc/PID/fdinfo, among this user's
// processes. QEMU in turn refuses an image a read-write disk holds, or
// one a read-only disk holds for writing; a read-only QEMU and a
// read-only disk share one. On NFS and SMB, where the kernel takes flock
// as a whole-file byte-range lock on the server, Open only looks: its own
// locks would meet the flock there as the same owner's, and the flock
// alone already conflicts with QEMU's (not on an NFS mount with
// local_lock=flock or all, where flock stays on this host).
package blk
