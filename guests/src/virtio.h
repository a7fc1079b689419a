/* Legacy virtio-pci (0.9.5) driver helpers for the test guests. */
#ifndef VIRTIO_H
#define VIRTIO_H
#include "rt.h"

#define VIRTIO_ACK 1
#define VIRTIO_DRIVER 2
#define VIRTIO_DRIVER_OK 4
#define VIRTIO_NEEDS_RESET 64
#define VIRTIO_FAILED 128

#define VIRTIO_F_INDIRECT_DESC (1u << 28)

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

/* Legacy register offsets in BAR0 (I/O). */
#define VIO_HOST_FEATURES 0
#define VIO_GUEST_FEATURES 4
#define VIO_QUEUE_PFN 8
#define VIO_QUEUE_SIZE 12
#define VIO_QUEUE_SEL 14
#define VIO_QUEUE_NOTIFY 16
#define VIO_STATUS 18
#define VIO_ISR 19
#define VIO_CONFIG 20

struct vring_desc {
	u64 addr;
	u32 len;
	u16 flags, next;
};

struct vdev {
	u32 dev, fn;
	u16 io;
	u8 irq, pin;
};

struct vq {
	struct vdev *d;
	u16 index, size, last_used;
	struct vring_desc *desc;
	volatile u16 *avail; /* flags, idx, ring[size] */
	volatile u8 *used;   /* flags, idx, ring[size] of {id, len} */
};

#define VQ_MEM 32768 /* enough for a legacy queue of up to 1024 entries */

/* vdev_open finds the nth device 1AF4:devid with the subsystem id, enables
 * I/O and bus mastering, resets it and sets ACK|DRIVER. It prints what it
 * found. */
int vdev_open(const char *tag, u16 devid, u16 subsys, u32 nth, struct vdev *d);
/* vq_setup sizes queue index, lays out its ring in mem (4096-aligned,
 * VQ_MEM bytes) and writes the PFN. */
int vq_setup(const char *tag, struct vdev *d, struct vq *q, u16 index, u8 *mem);
/* vq_chain2 lays out descriptors head and head+1 as one chain: a (alen
 * bytes), then b (blen bytes), which the device reads, or writes when
 * write is VRING_DESC_F_WRITE. vq_submit publishes it. */
void vq_chain2(struct vq *q, u16 head, const void *a, u32 alen, const void *b, u32 blen, u16 write);
/* vq_submit publishes head in the available ring and notifies the device. */
void vq_submit(struct vq *q, u16 head);
/* vq_publish publishes head without notifying: the device takes it only
 * when something else kicks the queue. */
void vq_publish(struct vq *q, u16 head);
/* vq_poll waits up to seconds for a used element; returns 0 and fills id/len. */
int vq_poll(struct vq *q, u32 seconds, u32 *id, u32 *len);
u16 vq_used_idx(struct vq *q);
static inline void vdev_status(struct vdev *d, u8 s) { outb(d->io + VIO_STATUS, s); }

#endif
