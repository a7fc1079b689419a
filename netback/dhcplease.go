package netback

import (
	"net"
	"net/netip"
)

// leaseTable hands out the user network's addresses: UserGuest to the VM's
// MAC, and to any other MAC the lowest address of UserSubnet that is not
// the network, the broadcast, .1 (kept free, as QEMU does), the gateway,
// the DNS server or UserGuest. Leases never expire: the guest keeps its
// address across renewals and reboots of the guest. It is used by one
// goroutine (the DHCP server's), so it has no lock.
type leaseTable struct {
	byMAC map[string]netip.Addr
	taken map[netip.Addr]bool
}

func newLeaseTable(guest net.HardwareAddr) *leaseTable {
	t := &leaseTable{
		byMAC: map[string]netip.Addr{guest.String(): UserGuest},
		taken: map[netip.Addr]bool{UserGuest: true, UserGateway: true, UserDNS: true},
	}
	t.taken[UserSubnet.Addr()] = true
	t.taken[UserSubnet.Addr().Next()] = true
	return t
}

// lease returns mac's address, assigning one on first sight; false when the
// subnet has none left.
func (t *leaseTable) lease(mac net.HardwareAddr) (netip.Addr, bool) {
	if a, ok := t.byMAC[mac.String()]; ok {
		return a, true
	}
	for a := UserSubnet.Addr(); UserSubnet.Contains(a); a = a.Next() {
		if t.taken[a] || !UserSubnet.Contains(a.Next()) { // the last is the broadcast
			continue
		}
		t.taken[a] = true
		t.byMAC[mac.String()] = a
		return a, true
	}
	return netip.Addr{}, false
}
