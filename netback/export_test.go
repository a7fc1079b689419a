package netback

// ResolvConfPath lets the tests give the user network's DNS server
// nameservers of their own.
var ResolvConfPath = &resolvConfPath
