package sso

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps pending logins and one-time codes in Redis under prefix
// (GETDEL makes each one usable once, across every api instance).
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisStore returns a Store in rdb with keys prefix+kind+":"+hash.
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: prefix}
}

// Put stores val under key for ttl.
func (s *RedisStore) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.prefix+key, val, ttl).Err()
}

// Take returns and deletes the value under key (nil if none).
func (s *RedisStore) Take(ctx context.Context, key string) ([]byte, error) {
	b, err := s.rdb.GetDel(ctx, s.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// MemoryStore is an in-process Store (one api instance, tests).
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]memEntry
}

type memEntry struct {
	val []byte
	exp time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]memEntry{}} }

// Put stores val under key for ttl.
func (s *MemoryStore) Put(_ context.Context, key string, val []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, e := range s.m {
		if now.After(e.exp) {
			delete(s.m, k)
		}
	}
	s.m[key] = memEntry{val: append([]byte(nil), val...), exp: now.Add(ttl)}
	return nil
}

// Take returns and deletes the value under key (nil if none or expired).
func (s *MemoryStore) Take(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	delete(s.m, key)
	if !ok || time.Now().After(e.exp) {
		return nil, nil
	}
	return e.val, nil
}
