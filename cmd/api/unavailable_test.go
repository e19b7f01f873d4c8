package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/enroll"
)

// TestDependencyDown: errors of an unreachable Redis or MariaDB, wrapped as
// the domain packages wrap them, are outages; refusals, bugs and a client
// that went away are not.
func TestDependencyDown(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	wrap := func(err error) error {
		return fmt.Errorf("admit student 1 course 2: %w", fmt.Errorf("run admit.lua: %w", err))
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"redis connection refused", wrap(refused), true},
		{"read i/o timeout", wrap(timeout), true},
		{"bare ECONNRESET", wrap(syscall.ECONNRESET), true},
		{"broken pipe", wrap(os.NewSyscallError("write", syscall.EPIPE)), true},
		{"EOF from a closed connection", wrap(io.EOF), true},
		{"unexpected EOF", wrap(io.ErrUnexpectedEOF), true},
		{"driver bad connection", fmt.Errorf("read course 3: %w", driver.ErrBadConn), true},
		{"mysql invalid connection", fmt.Errorf("login: read student: %w", mysql.ErrInvalidConn), true},
		{"mysql too many connections", fmt.Errorf("read cart: %w", &mysql.MySQLError{Number: 1040, Message: "Too many connections"}), true},
		{"mysql server shutdown", fmt.Errorf("decide: %w", &mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}), true},
		{"redis pool timeout", wrap(redis.ErrPoolTimeout), true},
		{"redis client closed", wrap(redis.ErrClosed), true},
		{"redis loading the AOF", wrap(redisError("LOADING Redis is loading the dataset in memory")), true},
		{"redis masterdown", wrap(redisError("MASTERDOWN Link with MASTER is down")), true},
		{"redis busy with a script", wrap(redisError("BUSY Redis is busy running a script.")), true},
		{"redis max clients", wrap(redisError("ERR max number of clients reached")), true},
		{"dependency deadline", wrap(context.DeadlineExceeded), true},
		{"dns", fmt.Errorf("dial: %w", &net.DNSError{Err: "no such host", Name: "redis"}), true},

		{"nil", nil, false},
		{"client went away", wrap(context.Canceled), false},
		{"dial cancelled by the client", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: context.Canceled}), false},
		{"sold out", enroll.ErrSoldOut, false},
		{"redis script error", wrap(redisError("ERR user_script:1: Script attempted to access nonexistent global variable")), false},
		{"mysql duplicate key", fmt.Errorf("insert: %w", &mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}), false},
		{"mysql deadlock", fmt.Errorf("decide: %w", &mysql.MySQLError{Number: 1213, Message: "Deadlock found"}), false},
		{"plain bug", errors.New("index out of range"), false},
	}
	for _, c := range cases {
		if got := dependencyDown(c.err); got != c.want {
			t.Errorf("%s: dependencyDown(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	// A domain error still wins over the outage test, and an outage is 503.
	if e, ok := classify(fmt.Errorf("%w (while %w)", enroll.ErrSoldOut, io.EOF)); !ok || e.Code != "sold_out" {
		t.Errorf("domain error with an EOF inside: %+v %v", e, ok)
	}
	if e, ok := classify(wrap(refused)); !ok || e != errUnavailable || e.Status != http.StatusServiceUnavailable {
		t.Errorf("refused: %+v %v", e, ok)
	}
}

// redisError is an error reply of the Redis server, as go-redis returns one.
type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}
