// Package ratelimit counts requests per client in Redis so that every API
// instance shares one budget per student and per IP address. It uses fixed
// windows (one INCR per limit, one round trip for all the limits of a
// request): simple, cheap at 100k users, and at worst twice the rate across a
// window boundary, which is good enough to stop scripts and brute force.
//
// Keys are "eqrl:{<term>}:<name>:<subject>"; they expire with their window.
package ratelimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed ratelimit.lua
var luaSource string

var script = redis.NewScript(luaSource)

// Rule is one limit: at most N requests per Window (N = 0 turns it off).
type Rule struct {
	Name   string
	N      int
	Window time.Duration
}

// Hit is one rule applied to one subject (a student id, an IP address).
type Hit struct {
	Rule    Rule
	Subject string
}

// Exceeded is returned when a limit is exceeded.
type Exceeded struct {
	Rule       Rule
	RetryAfter time.Duration
}

func (e *Exceeded) Error() string {
	return fmt.Sprintf("rate limit %s exceeded (%d per %s); retry in %s", e.Rule.Name, e.Rule.N, e.Rule.Window, e.RetryAfter)
}

// Limiter applies rules in Redis.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a limiter whose keys live under term's hash tag.
func New(rdb redis.UniversalClient, term string) *Limiter {
	return &Limiter{rdb: rdb, prefix: "eqrl:{" + term + "}:"}
}

// Key returns the Redis key counting hit in the current window.
func (l *Limiter) Key(h Hit) string { return l.prefix + h.Rule.Name + ":" + h.Subject }

// Allow counts one request against every hit and returns *Exceeded for the
// first limit exceeded, nil when all hold. Rules with N = 0 are skipped.
func (l *Limiter) Allow(ctx context.Context, hits ...Hit) error {
	keys := make([]string, 0, len(hits))
	args := make([]any, 0, 2*len(hits))
	var live []Hit
	for _, h := range hits {
		if h.Rule.N <= 0 || h.Rule.Window <= 0 {
			continue
		}
		live = append(live, h)
		keys = append(keys, l.Key(h))
		args = append(args, h.Rule.N, h.Rule.Window.Milliseconds())
	}
	if len(live) == 0 {
		return nil
	}
	res, err := script.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	if res[0] == 0 {
		return nil
	}
	return &Exceeded{Rule: live[res[0]-1].Rule, RetryAfter: time.Duration(max(res[1], 1)) * time.Millisecond}
}

// Reset forgets the count of h (e.g. failed logins after a success).
func (l *Limiter) Reset(ctx context.Context, h Hit) error {
	return l.rdb.Del(ctx, l.Key(h)).Err()
}

// Config holds the API's limits.
type Config struct {
	IP      Rule // every /api/v1 request, per client IP
	Student Rule // every authenticated student request, per student
	LoginIP Rule // login attempts (student and admin), per client IP
	// LoginFailed: login attempts per (account, client address), counted
	// before the password is checked and cleared by a success; see
	// LoginAttempt. LoginBackoff: the gentler per-account back-off.
	LoginFailed  Rule
	LoginBackoff Backoff
	// Exempt lists client addresses the per-IP rules do not apply to. By
	// default loopback: the load generator and operators on the machine
	// itself (behind nginx the client address is the forwarded one, so
	// remote clients are never loopback).
	Exempt []string
}

// IPExempt reports whether the per-IP rules skip ip.
func (c Config) IPExempt(ip string) bool {
	for _, e := range c.Exempt {
		if e == ip {
			return true
		}
	}
	return false
}

// Defaults are generous enough for a campus NAT and tight enough to stop a
// script: 50 req/s per IP, 10 req/s per student, 60 logins a minute per IP,
// 10 login attempts per account and address per 5 minutes without a success,
// and a per-account back-off (1 s doubling, at most 30 s) after 20 from
// anywhere within 15 minutes.
func Defaults() Config {
	return Config{
		IP:           Rule{Name: "ip", N: 3000, Window: time.Minute},
		Student:      Rule{Name: "st", N: 600, Window: time.Minute},
		LoginIP:      Rule{Name: "lip", N: 60, Window: time.Minute},
		LoginFailed:  Rule{Name: "lfail", N: 10, Window: 5 * time.Minute},
		LoginBackoff: Backoff{After: 20, Window: 15 * time.Minute, Base: time.Second, Cap: 30 * time.Second},
		Exempt:       []string{"127.0.0.1", "::1"},
	}
}

// FromEnv returns Defaults overridden by ENROLLQ_RATE_IP, ENROLLQ_RATE_STUDENT,
// ENROLLQ_RATE_LOGIN_IP and ENROLLQ_RATE_LOGIN_FAILED, each "N/duration"
// (e.g. "3000/1m") or "0"/"off" to turn the limit off. ENROLLQ_RATE_LIMITS=off
// turns every limit off. ENROLLQ_RATE_EXEMPT is a comma-separated list of
// client addresses free of the per-IP limits ("none": no exemption; default
// loopback).
func FromEnv() Config {
	c := Defaults()
	if v, ok := os.LookupEnv("ENROLLQ_RATE_EXEMPT"); ok {
		c.Exempt = nil
		if v != "none" && v != "" {
			c.Exempt = strings.Split(v, ",")
		}
	}
	if v := os.Getenv("ENROLLQ_RATE_LIMITS"); v == "off" || v == "0" {
		c.IP.N, c.Student.N, c.LoginIP.N, c.LoginFailed.N = 0, 0, 0, 0
		c.LoginBackoff.After = 0
		return c
	}
	for env, r := range map[string]*Rule{
		"ENROLLQ_RATE_IP": &c.IP, "ENROLLQ_RATE_STUDENT": &c.Student,
		"ENROLLQ_RATE_LOGIN_IP": &c.LoginIP, "ENROLLQ_RATE_LOGIN_FAILED": &c.LoginFailed,
	} {
		if v := os.Getenv(env); v != "" {
			if n, w, ok := parseRule(v); ok {
				r.N, r.Window = n, w
			}
		}
	}
	return c
}

func parseRule(s string) (int, time.Duration, bool) {
	if s == "off" || s == "0" {
		return 0, time.Minute, true
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			n, err1 := strconv.Atoi(s[:i])
			w, err2 := time.ParseDuration(s[i+1:])
			if err1 != nil || err2 != nil || n < 0 || w <= 0 {
				return 0, 0, false
			}
			return n, w, true
		}
	}
	return 0, 0, false
}

// Peek reports *Exceeded when h's count has reached its limit, without
// counting (for limits on failures, counted with Allow only when one occurs).
func (l *Limiter) Peek(ctx context.Context, h Hit) error {
	if h.Rule.N <= 0 {
		return nil
	}
	pipe := l.rdb.Pipeline()
	n := pipe.Get(ctx, l.Key(h))
	ttl := pipe.PTTL(ctx, l.Key(h))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("rate limit: %w", err)
	}
	c, _ := n.Int64()
	if c < int64(h.Rule.N) {
		return nil
	}
	return &Exceeded{Rule: h.Rule, RetryAfter: max(ttl.Val(), time.Millisecond)}
}

//go:embed login.lua
var loginSource string

var loginScript = redis.NewScript(loginSource)

// Backoff is the per-account exponential back-off of logins: once After
// attempts at one account (from any addresses) are pending or failed within
// Window, each further attempt makes the account refuse the next ones for
// Base·2^k, at most Cap (After = 0 turns it off). It is gentler than a
// lock-out: a rival spending the per-address budget of several addresses
// only delays the owner by seconds, and the owner's success clears it.
type Backoff struct {
	After     int
	Window    time.Duration
	Base, Cap time.Duration
}

// LoginAttempt counts one login attempt at account (a normalised account
// key) from address before the password is checked: the (account, address)
// budget r, then the account's back-off b. It returns *Exceeded when the
// attempt must be refused without checking the password.
func (l *Limiter) LoginAttempt(ctx context.Context, r Rule, b Backoff, account, address string) error {
	if (r.N <= 0 || r.Window <= 0) && b.After <= 0 {
		return nil
	}
	keys := l.loginKeys(r, account, address)
	win := b.Window
	if win <= 0 {
		win = 15 * time.Minute
	}
	res, err := loginScript.Run(ctx, l.rdb, keys, r.N, max(r.Window.Milliseconds(), 1), b.After,
		win.Milliseconds(), max(b.Base.Milliseconds(), 1), max(b.Cap.Milliseconds(), 1)).Int64Slice()
	if err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	switch res[0] {
	case 0:
		return nil
	case 1:
		return &Exceeded{Rule: r, RetryAfter: time.Duration(max(res[1], 1)) * time.Millisecond}
	default:
		return &Exceeded{Rule: Rule{Name: "lbackoff", N: b.After, Window: win}, RetryAfter: time.Duration(max(res[1], 1)) * time.Millisecond}
	}
}

// LoginSucceeded clears the attempts counted by LoginAttempt for account
// (its back-off too) after a correct password.
func (l *Limiter) LoginSucceeded(ctx context.Context, r Rule, account, address string) error {
	return l.rdb.Del(ctx, l.loginKeys(r, account, address)...).Err()
}

func (l *Limiter) loginKeys(r Rule, account, address string) []string {
	name := r.Name
	if name == "" {
		name = "lfail"
	}
	return []string{
		l.prefix + name + ":" + account + "|" + address,
		l.prefix + "lacct:" + account,
		l.prefix + "lnext:" + account,
	}
}
