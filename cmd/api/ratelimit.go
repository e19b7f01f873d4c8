package main

import (
	"errors"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/ratelimit"
)

// ipHit is the per-IP budget of the request's client. Behind nginx the
// client address comes from X-Forwarded-For (trusted from loopback only).
func (s *server) ipHit(c *gin.Context) ratelimit.Hit {
	return s.ipRule(c, s.limits.IP)
}

// ipRule applies r to the client's address, unless that address is exempt.
func (s *server) ipRule(c *gin.Context, r ratelimit.Rule) ratelimit.Hit {
	ip := c.ClientIP()
	if s.limits.IPExempt(ip) {
		r.N = 0
	}
	return ratelimit.Hit{Rule: r, Subject: ip}
}

// admissionBudget is the client address's budget in the form admit.lua
// counts it, so admission stays one Redis round trip.
func (s *server) admissionBudget(c *gin.Context) queue.Limit {
	h := s.ipHit(c)
	if s.limiter == nil || h.Rule.N <= 0 {
		return queue.Limit{}
	}
	return queue.Limit{Key: s.limiter.Key(h), N: h.Rule.N, Window: h.Rule.Window}
}

// limitIP applies the per-IP budget (public routes).
func (s *server) limitIP(c *gin.Context) {
	if s.allow(c, s.ipHit(c)) {
		c.Next()
	}
}

// allow counts the request against hits; when a budget is spent it answers
// 429 with Retry-After and returns false. If Redis cannot be asked, the
// request goes through: the limits protect the service, they are not a gate
// that should take it down with Redis (admission has its own limit in Lua).
func (s *server) allow(c *gin.Context, hits ...ratelimit.Hit) bool {
	if s.limiter == nil {
		return true
	}
	err := s.limiter.Allow(c.Request.Context(), hits...)
	return s.limited(c, err)
}

func (s *server) limited(c *gin.Context, err error) bool {
	var ex *ratelimit.Exceeded
	if errors.As(err, &ex) {
		c.Header("Retry-After", strconv.Itoa(int(ex.RetryAfter.Seconds())+1))
		abort(c, errRateLimited)
		return false
	}
	if err != nil && s.log != nil {
		s.log.Warn("rate limiter unavailable; letting the request through", "err", err)
	}
	return true
}

// allowLogin applies the login budgets before the password is checked:
// attempts per client address, then — counted atomically in one script —
// attempts at the account from this address and the account's back-off.
// The account key is the database's collation key of the name (see
// app.AccountKey), so "Admin", "ADMIN " and "admin" share one budget. It
// returns the key for loginDone ("" and false when refused or answered).
func (s *server) allowLogin(c *gin.Context, kind, name string) (string, bool) {
	if s.limiter == nil {
		return "", true
	}
	ctx := c.Request.Context()
	if !s.limited(c, s.limiter.Allow(ctx, s.ipHit(c), s.ipRule(c, s.limits.LoginIP))) {
		return "", false
	}
	key, err := s.svc.AccountKey(ctx, name)
	if err != nil {
		fail(c, err)
		return "", false
	}
	key = kind + ":" + key
	if !s.limited(c, s.limiter.LoginAttempt(ctx, s.limits.LoginFailed, s.limits.LoginBackoff, key, c.ClientIP())) {
		return "", false
	}
	return key, true
}

// loginDone clears the account's attempts after a success (failures stay
// counted: they were counted before the check).
func (s *server) loginDone(c *gin.Context, key string, err error) {
	if s.limiter == nil || key == "" || err != nil {
		return
	}
	_ = s.limiter.LoginSucceeded(c.Request.Context(), s.limits.LoginFailed, key, c.ClientIP())
}
