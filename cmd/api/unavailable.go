package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// dependencyDown reports whether err says that Redis or MariaDB could not be
// reached or could not answer now (refused, reset or dropped connections,
// timeouts, exhausted pools, a server starting or shutting down), as opposed
// to a bug or a refusal by the rules. Such an error is answered 503
// unavailable with Retry-After: the client may ask again, and with an
// Idempotency-Key a retry of an admission whose answer was lost returns that
// answer.
//
// A cancelled context is not an outage: the client went away.
func dependencyDown(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	for _, target := range downErrors {
		if errors.Is(err, target) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError // dial, read or write on a socket
	if errors.As(err, &oe) {
		return true
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return true
	}
	// Redis answering that it cannot serve now.
	for _, p := range redisBusy {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, // ER_CON_COUNT_ERROR: too many connections
			1053, // ER_SERVER_SHUTDOWN
			1927: // ER_CONNECTION_KILLED (MariaDB)
			return true
		}
	}
	return false
}

// redisBusy are the prefixes of Redis's error replies that mean "not now":
// loading the AOF after a restart, a script past lua-time-limit, a replica
// without its master, writes refused after a failed disk write, too many
// clients ("ERR " is dropped by redis.HasErrorPrefix).
var redisBusy = []string{"LOADING ", "BUSY ", "MASTERDOWN ", "TRYAGAIN ", "CLUSTERDOWN ", "MISCONF ",
	"max number of clients reached"}

// downErrors are the sentinels of an unreachable dependency.
var downErrors = []error{
	context.DeadlineExceeded, // a dependency call ran out of time
	driver.ErrBadConn,
	sql.ErrConnDone,
	mysql.ErrInvalidConn, // "invalid connection": the server went away mid-query
	redis.ErrPoolTimeout,
	redis.ErrPoolExhausted,
	redis.ErrClosed,
	io.EOF, // the server closed the connection
	io.ErrUnexpectedEOF,
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	syscall.ECONNABORTED,
	syscall.EPIPE,
	syscall.ETIMEDOUT,
	syscall.EHOSTUNREACH,
	syscall.ENETUNREACH,
}
