package search

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/search/searchtest"
	"github.com/enrollq/enrollq/internal/store"
)

// searchURL is the test node (TEST_SEARCH_URL, default 127.0.0.1:9200).
func searchURL() string {
	if v := os.Getenv("TEST_SEARCH_URL"); v != "" {
		return v
	}
	return "http://127.0.0.1:9200"
}

var (
	fixtureOnce    sync.Once
	fixtureCourses []searchtest.Course
	fixtureErr     error
)

// fixture returns the parsed testdata/fixtures/catalog.csv.
func fixture(t testing.TB) []searchtest.Course {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureCourses, fixtureErr = searchtest.LoadCSV(dbtest.Fixture(t, "catalog.csv"))
	})
	if fixtureErr != nil {
		t.Fatalf("load fixture: %v", fixtureErr)
	}
	return fixtureCourses
}

// testBundle is one test's world: its own database (primary + replica view),
// its own alias on the shared node, and the seeded catalog.
type testBundle struct {
	db      *dbtest.DB
	replica *sqlx.DB
	client  *Client
	indexer *Indexer
	alias   string
	courses []searchtest.Course
	ids     []uint64 // course id of courses[i]
}

type setupOpts struct {
	courses  []searchtest.Course // default: the fixture
	noIndex  bool                // do not bootstrap + sync the index
	modify   func(t testing.TB, db *dbtest.DB, ids []uint64)
	interval time.Duration
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// setup seeds a fresh database, waits for the replica and (unless noIndex)
// indexes everything under a fresh alias that is deleted when t ends.
func setup(t testing.TB, o setupOpts) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := &testBundle{courses: o.courses}
	if b.courses == nil {
		b.courses = fixture(t)
	}
	b.db = dbtest.New(t)
	var err error
	if b.ids, err = searchtest.Seed(ctx, b.db.DB, b.courses); err != nil {
		t.Fatalf("seed: %v", err)
	}
	if o.modify != nil {
		o.modify(t, b.db, b.ids)
	}
	b.replica = openReplica(t, b.db)

	b.alias = dbtest.UniqueName("enrollq_t_search_")
	b.client = newTestClient(t, b.alias, searchURL())
	t.Cleanup(func() { deleteIndexes(t, b.client, b.alias) })
	b.indexer, err = NewIndexer(IndexerConfig{Client: b.client, Replica: b.replica, Interval: o.interval, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if !o.noIndex {
		if err := b.indexer.Bootstrap(ctx); err != nil {
			t.Fatalf("bootstrap: %v", err)
		}
		if _, err := b.indexer.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if err := b.client.refresh(ctx, b.alias); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func newTestClient(t testing.TB, alias, addr string) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{Addresses: []string{addr}, Alias: alias})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deleteIndexes removes every index of a test alias.
func deleteIndexes(t testing.TB, c *Client, alias string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, pattern := range []string{alias + "_*", alias} {
		_, err := c.do(ctx, esapi.IndicesDeleteRequest{Index: []string{pattern}}, nil)
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Logf("delete index %s: %v", pattern, err)
		}
	}
}

// openReplica opens db's database on the replica once it has replicated
// every seeded course and meeting.
func openReplica(t testing.TB, db *dbtest.DB) *sqlx.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dsn := dbtest.WithDatabase(dbtest.ReplicaDSN(), db.Name)
	var replica *sqlx.DB
	for {
		var err error
		if replica, err = store.Open(ctx, dsn); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("open replica database %s: %v", db.Name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Cleanup(func() { replica.Close() })
	if err := searchtest.WaitReplica(ctx, db.DB, replica); err != nil {
		t.Fatalf("wait for replica: %v", err)
	}
	return replica
}

// tcpProxy forwards a local port to a target; Close drops the listener and
// every connection (the node looks dead), Open listens on the same port
// again, and a delay holds back each new connection's first bytes.
type tcpProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	delay time.Duration
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Close)
	return p
}

func (p *tcpProxy) URL() string { return "http://" + p.addr }

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *tcpProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	delay := p.delay
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() {
		if delay > 0 {
			time.Sleep(delay)
		}
		io.Copy(c, up)
		done <- struct{}{}
	}()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// Close makes the node unreachable through the proxy.
func (p *tcpProxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Open makes the node reachable again on the same address.
func (p *tcpProxy) Open(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("reopen proxy on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// SetDelay delays the answers on connections opened from now on.
func (p *tcpProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

func isBadCursor(err error) bool { return errors.Is(err, ErrBadCursor) }
