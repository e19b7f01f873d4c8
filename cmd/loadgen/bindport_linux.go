package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort makes a socket bound to a source address take its port only at
// connect(), as a plain connect does (IP_BIND_ADDRESS_NO_PORT). Without it,
// bind(127.0.0.x:0) reserves a port number for that socket alone, and the
// kernel then keeps every connect() on the host, on any address, off that
// number: 100,000 bound sockets used up the 28,232 ephemeral ports, and
// nginx could no longer connect to queue-ws ("Cannot assign requested
// address"). With it, a port is shared by connections to different
// destinations, as connect() always shares them.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
