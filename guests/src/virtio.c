/* Legacy virtio-pci transport and split virtqueue, driver side. */
#include "virtio.h"

int vdev_open(const char *tag, u16 devid, u16 subsys, u32 nth, struct vdev *d)
{
	if (pci_find(0x1AF4, devid, subsys, nth, &d->dev, &d->fn) != 0) {
		printf("%s: no device %u of 1af4:%04x subsystem %u on bus 0\n", tag, nth, devid,
		       subsys);
		return -1;
	}
	u32 cmd = pci_read(0, d->dev, d->fn, 0x04) & 0xFFFF;
	pci_write(0, d->dev, d->fn, 0x04, cmd | 0x5); /* I/O space + bus master */
	u32 bar0 = pci_read(0, d->dev, d->fn, 0x10);
	u32 intr = pci_read(0, d->dev, d->fn, 0x3C);
	u32 rev = pci_read(0, d->dev, d->fn, 0x08) & 0xFF;
	d->irq = (u8)intr;
	d->pin = (u8)(intr >> 8);
	printf("%s: found 00:%02x.%u rev %u bar0=0x%x irq %u pin %u\n", tag, d->dev, d->fn, rev,
	       bar0, d->irq, d->pin);
	if (!(bar0 & 1) || (bar0 & ~3u) == 0 || (bar0 & ~3u) > 0xFFFF) {
		printf("%s: bar0 0x%x is not an assigned I/O BAR\n", tag, bar0);
		return -1;
	}
	d->io = (u16)(bar0 & ~3u);
	vdev_status(d, 0);
	vdev_status(d, VIRTIO_ACK);
	vdev_status(d, VIRTIO_ACK | VIRTIO_DRIVER);
	return 0;
}

int vq_setup(const char *tag, struct vdev *d, struct vq *q, u16 index, u8 *mem)
{
	outw(d->io + VIO_QUEUE_SEL, index);
	u16 size = inw(d->io + VIO_QUEUE_SIZE);
	if (size == 0 || (size & (size - 1)) || size > 1024) {
		printf("%s: queue %u size %u unusable\n", tag, index, size);
		return -1;
	}
	u32 avail_end = 16u * size + 6u + 2u * size;
	u32 used_off = (avail_end + 4095) & ~4095u;
	if (used_off + 6u + 8u * size > VQ_MEM) {
		printf("%s: queue %u size %u too big\n", tag, index, size);
		return -1;
	}
	q->d = d;
	q->index = index;
	q->size = size;
	q->last_used = 0;
	q->desc = (struct vring_desc *)mem;
	q->avail = (volatile u16 *)(mem + 16u * size);
	q->used = mem + used_off;
	/* The ring memory is in .bss, zeroed by the loader: no big memset here. */
	outl(d->io + VIO_QUEUE_PFN, (u32)(uptr)mem >> 12);
	printf("%s: queue %u size %u ring 0x%x used 0x%x\n", tag, index, size, (u32)(uptr)mem,
	       (u32)(uptr)q->used);
	return 0;
}

void vq_chain2(struct vq *q, u16 head, const void *a, u32 alen, const void *b, u32 blen, u16 write)
{
	struct vring_desc *d = &q->desc[head];
	d[0].addr = (u32)(uptr)a;
	d[0].len = alen;
	d[0].flags = (u16)(write | VRING_DESC_F_NEXT);
	d[0].next = (u16)(head + 1);
	d[1].addr = (u32)(uptr)b;
	d[1].len = blen;
	d[1].flags = write;
	d[1].next = 0;
}

void vq_publish(struct vq *q, u16 head)
{
	u16 idx = q->avail[1];
	q->avail[2 + (idx & (q->size - 1))] = head;
	barrier();
	q->avail[1] = (u16)(idx + 1);
	mb();
}

void vq_submit(struct vq *q, u16 head)
{
	vq_publish(q, head);
	outw(q->d->io + VIO_QUEUE_NOTIFY, q->index);
}

u16 vq_used_idx(struct vq *q)
{
	return *(volatile u16 *)(q->used + 2);
}

int vq_poll(struct vq *q, u32 seconds, u32 *id, u32 *len)
{
	struct deadline dl;
	deadline_init(&dl, seconds);
	while (!deadline_passed(&dl)) {
		if (vq_used_idx(q) != q->last_used) {
			barrier();
			volatile u8 *e = q->used + 4 + 8u * (q->last_used & (q->size - 1));
			*id = *(volatile u32 *)e;
			*len = *(volatile u32 *)(e + 4);
			q->last_used++;
			return 0;
		}
	}
	return -1;
}
