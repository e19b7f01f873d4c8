package ratelimit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/ratelimit"
)

func TestAllowAndPeek(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	l := ratelimit.New(rdb, term)
	ctx := context.Background()
	a := ratelimit.Hit{Rule: ratelimit.Rule{Name: "a", N: 3, Window: time.Minute}, Subject: "x"}
	b := ratelimit.Hit{Rule: ratelimit.Rule{Name: "b", N: 10, Window: time.Minute}, Subject: "x"}
	off := ratelimit.Hit{Rule: ratelimit.Rule{Name: "off", N: 0, Window: time.Minute}, Subject: "x"}
	for i := 0; i < 3; i++ {
		if err := l.Allow(ctx, a, b, off); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	err := l.Allow(ctx, b, a)
	var ex *ratelimit.Exceeded
	if !errors.As(err, &ex) || ex.Rule.Name != "a" || ex.RetryAfter <= 0 || ex.RetryAfter > time.Minute {
		t.Fatalf("4th request: %v", err)
	}
	// b counted every call, a refused one included.
	if n, _ := rdb.Get(ctx, l.Key(b)).Int(); n != 4 {
		t.Errorf("b count = %d, want 4", n)
	}
	if err := l.Peek(ctx, a); !errors.As(err, &ex) {
		t.Errorf("peek a: %v", err)
	}
	if err := l.Peek(ctx, b); err != nil {
		t.Errorf("peek b: %v", err)
	}
	if err := l.Reset(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := l.Allow(ctx, a); err != nil {
		t.Errorf("after reset: %v", err)
	}
	if ttl := rdb.PTTL(ctx, l.Key(a)).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("window ttl %v", ttl)
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("ENROLLQ_RATE_IP", "5/2s")
	t.Setenv("ENROLLQ_RATE_STUDENT", "off")
	t.Setenv("ENROLLQ_RATE_LOGIN_IP", "nonsense")
	t.Setenv("ENROLLQ_RATE_EXEMPT", "10.0.0.1,10.0.0.2")
	c := ratelimit.FromEnv()
	d := ratelimit.Defaults()
	if c.IP.N != 5 || c.IP.Window != 2*time.Second || c.Student.N != 0 || c.LoginIP != d.LoginIP {
		t.Errorf("config %+v", c)
	}
	if !c.IPExempt("10.0.0.2") || c.IPExempt("127.0.0.1") {
		t.Errorf("exempt %v", c.Exempt)
	}
	t.Setenv("ENROLLQ_RATE_LIMITS", "off")
	c = ratelimit.FromEnv()
	if c.IP.N != 0 || c.Student.N != 0 || c.LoginIP.N != 0 || c.LoginFailed.N != 0 {
		t.Errorf("all off: %+v", c)
	}
}
