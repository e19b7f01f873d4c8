//go:build !linux

package main

import "syscall"

// bindNoPort: IP_BIND_ADDRESS_NO_PORT is Linux's; elsewhere a bound socket
// takes its port at bind() (see bindport_linux.go).
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
