// Package revocation keeps the token version of every student and admin so
// that a token issued before a password change or a registrar's revoke stops
// working, on every api and queue-ws instance, within a couple of seconds.
//
// The version lives in MariaDB (students.token_version, admins.token_version)
// and every token carries the one it was issued with (auth.Claims.Version).
// Reading MariaDB for every request would cost a query per request at
// 100,000 students, and a Redis GET per request would add a round trip to
// admission (one admit.lua call today), so each process caches versions in
// memory and learns of bumps from Redis:
//
//   - a bump updates MariaDB first, then adds "<kind>:<id>" to a sorted set
//     in Redis scored with Redis's own clock (one script: no host clocks);
//   - each process, at most once per PollEvery (1 s) and inline in whichever
//     request notices it is due, reads the members bumped in the last
//     Overlap (5 s) and drops them from its cache; the overlap re-drops an
//     entry that a concurrent read may have filled with the old version just
//     before the bump committed. A process that has not polled for longer
//     than the overlap (paused, or Redis unreachable) drops its whole cache
//     and reads MariaDB again, so it never trusts what it may have missed;
//   - a cached entry lives at most TTL (30 min) anyway.
//
// The api and queue-ws processes also call Run: it loads every student's
// and admin's version in one query at start (100,000 rows: a fraction of a
// second), polls in the background so an idle spell does not empty the
// cache before the opening burst, and reloads the whole table every Reload
// (10 min) and after a gap. So a revoked token stops working within about
// PollEvery across instances (at once on the instance that bumped), and the
// steady cost is one Redis read per second per process, with no MariaDB
// read per request or per student in the burst. Without Run (tests), the
// cache fills on demand and polls inline.
package revocation

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/auth"
)

// Subject kinds (the tables whose token_version is kept).
const (
	Student = "s"
	Admin   = "a"
)

// ErrUnknownSubject: no row for the subject (a deleted student or admin);
// their tokens are refused like revoked ones.
var ErrUnknownSubject = errors.New("revocation: unknown subject")

// Defaults (see the package comment).
const (
	DefaultPollEvery = time.Second
	DefaultOverlap   = 5 * time.Second
	DefaultTTL       = 30 * time.Minute
	DefaultReload    = 10 * time.Minute
	keep             = 10 * time.Minute // bumps older than this leave the sorted set
)

var bumpScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return now`)

var pollScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
table.insert(m, 1, tostring(now))
return m`)

type entry struct {
	version int64
	at      time.Time
}

// Versions is one process's view of the token versions.
type Versions struct {
	db  *sqlx.DB
	rdb redis.UniversalClient
	key string

	PollEvery, Overlap, TTL, Reload time.Duration

	// OnBump, when set, is told (outside any lock, on the polling
	// goroutine) of every subject a poll saw bumped. Within the overlap the
	// same bump is told again: the callee must be idempotent.
	OnBump func(kind string, id int64)

	mu       sync.Mutex
	m        map[string]entry
	lastPoll time.Time // host time of the last poll attempt
	lastSeen int64     // Redis time (ms) of the last successful poll
	lastTidy time.Time
	gap      bool // the last poll found a gap (Run reloads)
	polling  atomic.Bool

	dbReads atomic.Int64
}

// New returns the versions of db's students and admins, with bumps
// announced under term's hash tag in rdb.
func New(db *sqlx.DB, rdb redis.UniversalClient, term string) *Versions {
	return &Versions{db: db, rdb: rdb, key: "eqrev:{" + term + "}",
		PollEvery: DefaultPollEvery, Overlap: DefaultOverlap, TTL: DefaultTTL, Reload: DefaultReload, m: map[string]entry{}}
}

// DBReads is how many versions were read from MariaDB (tests, metrics).
func (v *Versions) DBReads() int64 { return v.dbReads.Load() }

func subjectKey(kind string, id int64) string { return kind + ":" + strconv.FormatInt(id, 10) }

func table(kind string) string {
	if kind == Admin {
		return "admins"
	}
	return "students"
}

// Current returns the token version of (kind, id).
func (v *Versions) Current(ctx context.Context, kind string, id int64) (int64, error) {
	v.maybePoll(ctx)
	k := subjectKey(kind, id)
	v.mu.Lock()
	e, ok := v.m[k]
	v.mu.Unlock()
	if ok && time.Since(e.at) < v.TTL {
		return e.version, nil
	}
	at := time.Now()
	var ver int64
	err := v.db.GetContext(ctx, &ver, `SELECT token_version FROM `+table(kind)+` WHERE id = ?`, id)
	v.dbReads.Add(1)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrUnknownSubject
	}
	if err != nil {
		return 0, fmt.Errorf("read token version: %w", err)
	}
	v.mu.Lock()
	v.m[k] = entry{version: ver, at: at}
	v.mu.Unlock()
	return ver, nil
}

// Check returns auth.ErrRevoked when c's version is older than its
// subject's (or the subject no longer exists). Student and ws tokens are
// checked against students, admin tokens against admins.
func (v *Versions) Check(ctx context.Context, c auth.Claims) error {
	kind := Student
	if c.Kind == auth.KindAdmin {
		kind = Admin
	}
	cur, err := v.Current(ctx, kind, c.Subject)
	if errors.Is(err, ErrUnknownSubject) {
		return auth.ErrRevoked
	}
	if err != nil {
		return err
	}
	if c.Version < cur {
		return auth.ErrRevoked
	}
	return nil
}

// Bump raises (kind, id)'s version in MariaDB and announces it; it returns
// the new version (ErrUnknownSubject when there is no such row).
func (v *Versions) Bump(ctx context.Context, kind string, id int64) (int64, error) {
	res, err := v.db.ExecContext(ctx, `UPDATE `+table(kind)+` SET token_version = token_version + 1 WHERE id = ?`, id)
	if err != nil {
		return 0, fmt.Errorf("bump token version: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, ErrUnknownSubject
	}
	var ver int64
	if err := v.db.GetContext(ctx, &ver, `SELECT token_version FROM `+table(kind)+` WHERE id = ?`, id); err != nil {
		return 0, fmt.Errorf("read token version: %w", err)
	}
	return ver, v.Announce(ctx, kind, id)
}

// Announce tells every process that (kind, id)'s version changed (after the
// caller's own UPDATE has committed) and drops it from this process's cache.
func (v *Versions) Announce(ctx context.Context, kind string, id int64) error {
	k := subjectKey(kind, id)
	v.mu.Lock()
	delete(v.m, k)
	v.mu.Unlock()
	if err := bumpScript.Run(ctx, v.rdb, []string{v.key}, k, keep.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("announce token version: %w", err)
	}
	return nil
}

// maybePoll reads the recent bumps when a poll is due; one request polls,
// the others go on with the cache.
func (v *Versions) maybePoll(ctx context.Context) {
	v.mu.Lock()
	due := time.Since(v.lastPoll) >= v.PollEvery
	v.mu.Unlock()
	if !due || !v.polling.CompareAndSwap(false, true) {
		return
	}
	defer v.polling.Store(false)
	v.Poll(ctx)
}

// Poll reads the bumps of the last Overlap and drops them from the cache
// (the whole cache if the previous successful poll is older than that).
func (v *Versions) Poll(ctx context.Context) {
	bumped := v.poll(ctx)
	if v.OnBump == nil {
		return
	}
	for _, k := range bumped {
		kind, id, ok := strings.Cut(k, ":")
		if n, err := strconv.ParseInt(id, 10, 64); ok && err == nil {
			v.OnBump(kind, n)
		}
	}
}

// poll is Poll under the lock; it returns the members it saw bumped.
func (v *Versions) poll(ctx context.Context) (bumped []string) {
	res, err := pollScript.Run(ctx, v.rdb, []string{v.key}, v.Overlap.Milliseconds()).StringSlice()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastPoll = time.Now()
	if err != nil || len(res) == 0 {
		// Bumps may be missed: trust MariaDB only until Redis answers again.
		clear(v.m)
		v.lastSeen = 0
		v.gap = true
		return
	}
	now, _ := strconv.ParseInt(res[0], 10, 64)
	if v.lastSeen == 0 || now-v.lastSeen > v.Overlap.Milliseconds()-v.PollEvery.Milliseconds()/2 {
		clear(v.m)
		v.gap = true
	} else {
		for _, k := range res[1:] {
			if strings.Contains(k, ":") {
				delete(v.m, k)
			}
		}
	}
	bumped = res[1:]
	v.lastSeen = now
	if time.Since(v.lastTidy) > time.Minute {
		v.lastTidy = time.Now()
		for k, e := range v.m {
			if time.Since(e.at) >= v.TTL {
				delete(v.m, k)
			}
		}
	}
	return bumped
}

// Run keeps the cache complete and fresh until ctx ends: Load at start,
// a poll every PollEvery, a full Load every Reload and after a gap.
func (v *Versions) Run(ctx context.Context, log *slog.Logger) {
	v.Poll(ctx) // start the feed before loading: bumps from now on are seen
	v.mu.Lock()
	v.gap = false
	v.mu.Unlock()
	loaded := time.Time{}
	load := func() {
		if err := v.Load(ctx); err != nil {
			if ctx.Err() == nil && log != nil {
				log.Warn("token versions: load failed; reading them on demand", "err", err)
			}
			return
		}
		loaded = time.Now()
	}
	load()
	t := time.NewTicker(v.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if v.polling.CompareAndSwap(false, true) {
			v.Poll(ctx)
			v.polling.Store(false)
		}
		v.mu.Lock()
		gap := v.gap && v.lastSeen != 0
		if gap {
			v.gap = false
		}
		v.mu.Unlock()
		if gap || time.Since(loaded) >= v.Reload {
			load()
		}
	}
}

// Load reads every student's and admin's token version into the cache (one
// query per table). An entry dropped by a bump while it ran is dropped
// again by the next polls (Overlap).
func (v *Versions) Load(ctx context.Context) error {
	at := time.Now()
	for _, kind := range []string{Student, Admin} {
		rows, err := v.db.QueryContext(ctx, `SELECT id, token_version FROM `+table(kind))
		if err != nil {
			return fmt.Errorf("load token versions: %w", err)
		}
		batch := make(map[string]entry, 1024)
		for rows.Next() {
			var id, ver int64
			if err := rows.Scan(&id, &ver); err != nil {
				rows.Close()
				return fmt.Errorf("load token versions: %w", err)
			}
			batch[subjectKey(kind, id)] = entry{version: ver, at: at}
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return fmt.Errorf("load token versions: %w", err)
		}
		rows.Close()
		v.mu.Lock()
		for k, e := range batch {
			v.m[k] = e
		}
		v.mu.Unlock()
	}
	return nil
}

// Len is how many versions are cached (tests, metrics).
func (v *Versions) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.m)
}
