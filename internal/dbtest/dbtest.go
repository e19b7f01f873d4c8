// Package dbtest gives tests their own migrated MariaDB database and their own
// Redis key space on the real services started by `make up`.
//
// TEST_MYSQL_DSN (default root-less enrollq user on 127.0.0.1:3306) and
// TEST_REDIS_ADDR (default 127.0.0.1:6379) point at the services.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/store"
)

// DSN returns the server DSN tests connect with (no database selected).
func DSN() string {
	if v := os.Getenv("TEST_MYSQL_DSN"); v != "" {
		return v
	}
	return "enrollq:enrollq@tcp(127.0.0.1:3306)/"
}

// ReplicaDSN returns the replica server DSN.
func ReplicaDSN() string {
	if v := os.Getenv("TEST_REPLICA_DSN"); v != "" {
		return v
	}
	return "enrollq:enrollq@tcp(127.0.0.1:3307)/"
}

// RedisAddr returns the Redis address tests use.
func RedisAddr() string {
	if v := os.Getenv("TEST_REDIS_ADDR"); v != "" {
		return v
	}
	return "127.0.0.1:6379"
}

// UniqueName returns prefix plus a random suffix, safe as a database name or
// Redis key prefix.
func UniqueName(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// WithDatabase returns dsn with its database name replaced by name.
func WithDatabase(dsn, name string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		panic(fmt.Sprintf("dbtest: bad dsn %q: %v", dsn, err))
	}
	cfg.DBName = name
	return cfg.FormatDSN()
}

// DB is a fresh, migrated database that is dropped when the test ends.
type DB struct {
	*sqlx.DB
	Name string
	DSN  string // DSN of this database on the primary
}

// New creates a database named enrollq_t_<random>, migrates it and registers
// its removal with t.Cleanup.
func New(t testing.TB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := store.Open(ctx, DSN())
	if err != nil {
		t.Fatalf("dbtest: connect to MariaDB (is `make up` running?): %v", err)
	}
	name := UniqueName("enrollq_t_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		admin.Close()
		t.Fatalf("dbtest: create database: %v", err)
	}
	dsn := WithDatabase(DSN(), name)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", name, err)
	}
	if err := store.Migrate(ctx, db); err != nil {
		t.Fatalf("dbtest: migrate %s: %v", name, err)
	}
	t.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("dbtest: drop %s: %v", name, err)
		}
		admin.Close()
	})
	return &DB{DB: db, Name: name, DSN: dsn}
}

// Redis returns a client on the test Redis and a unique key prefix (usable
// as a term name) whose keys are deleted when the test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: RedisAddr(), PoolSize: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("dbtest: connect to Redis (is `make up` running?): %v", err)
	}
	prefix := UniqueName("t")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, "*"+prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			rdb.Del(ctx, keys[:n]...)
			keys = keys[n:]
		}
		rdb.Close()
	})
	return rdb, prefix
}

// Fixture returns the path of a file in ../shared/fixtures, searching upward
// from the working directory so tests in any package find it.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for i := 0; i < 8; i++ {
		for _, cand := range []string{dir + "/../shared/fixtures/" + name, dir + "/testdata/fixtures/" + name} {
			if _, err := os.Stat(cand); err == nil {
				return cand
			}
		}
		if j := strings.LastIndex(dir, "/"); j > 0 {
			dir = dir[:j]
		} else {
			break
		}
	}
	t.Fatalf("dbtest: fixture %s not found (expected ../shared/fixtures beside the repo)", name)
	return ""
}
