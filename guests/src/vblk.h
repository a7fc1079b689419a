/* Shared by the vblk guest's driver (vblk.c) and its malicious requests
 * (vblk_evil.c). */
#ifndef VBLK_H
#define VBLK_H
#include "virtio.h"

#define BLK_F_RO (1u << 5)
#define BLK_F_FLUSH (1u << 9)
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8

struct blk_hdr {
	u32 type, reserved;
	u64 sector;
};

extern u8 blk_ring[VQ_MEM];
extern struct vdev blk_dev;
extern struct vq blk_q;
extern u32 ram_top; /* end of RAM from the multiboot info (0: unknown) */

/* blk_init resets the device and brings it up again: features, queue 0
 * (ring indices back to 0), DRIVER_OK. */
void blk_init(void);
/* blk_read0 reads sector 0 with a well-formed request and returns the status. */
u32 blk_read0(void);
/* evil_run submits the malformed request an "evil=KIND" word names, reports
 * what the device did, resets it and proves it works again; it exits. */
void evil_run(u32 timeout);
#endif
