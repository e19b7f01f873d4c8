// Package config reads EnrollQ's settings from the environment. Every value has
// a local default that matches the ports and credentials the project's scripts
// start services with (see README "Configuration").
package config

import (
	"os"
	"strconv"
	"time"
)

// Config is the process-wide configuration.
type Config struct {
	DBDSN         string // ENROLLQ_DB_DSN: MariaDB primary
	ReplicaDSN    string // ENROLLQ_REPLICA_DSN: MariaDB replica (reads, search feed)
	RedisAddr     string // ENROLLQ_REDIS_ADDR
	SearchURL     string // ENROLLQ_SEARCH_URL: OpenSearch / Elasticsearch
	SearchIndex   string // ENROLLQ_SEARCH_INDEX: alias name
	Term          string // ENROLLQ_TERM: the term being registered
	TokenSecret   string // ENROLLQ_TOKEN_SECRET: HMAC key for access and ws tokens
	AdminUser     string // ENROLLQ_ADMIN_USER
	AdminPassword string // ENROLLQ_ADMIN_PASSWORD
	BcryptCost    int    // ENROLLQ_BCRYPT_COST
	HTTPAddr      string // ENROLLQ_HTTP_ADDR (api) / ENROLLQ_WS_ADDR (queue-ws)
	WSAddr        string
	WSPublicURL   string        // ENROLLQ_WS_PUBLIC_URL: where browsers connect for positions
	TokenTTL      time.Duration // ENROLLQ_TOKEN_TTL
	BatchSize     int           // ENROLLQ_BATCH_SIZE: drain batch size
	WebDir        string        // ENROLLQ_WEB_DIR: static files
	// ENROLLQ_AOF_COMPACT_EVERY: how often the scheduler instances look
	// whether Redis's AOF is due for a rewrite at a quiet moment (0: never;
	// Redis's own 1 GB trigger remains). See queue.Compactor.
	AOFCompactEvery time.Duration
}

// FromEnv returns the configuration from environment variables with defaults.
func FromEnv() Config {
	return Config{
		DBDSN:         env("ENROLLQ_DB_DSN", "enrollq:enrollq@tcp(127.0.0.1:3306)/enrollq"),
		ReplicaDSN:    env("ENROLLQ_REPLICA_DSN", "enrollq:enrollq@tcp(127.0.0.1:3307)/enrollq"),
		RedisAddr:     env("ENROLLQ_REDIS_ADDR", "127.0.0.1:6379"),
		SearchURL:     env("ENROLLQ_SEARCH_URL", "http://127.0.0.1:9200"),
		SearchIndex:   env("ENROLLQ_SEARCH_INDEX", "courses"),
		Term:          env("ENROLLQ_TERM", "2026-1"),
		TokenSecret:   env("ENROLLQ_TOKEN_SECRET", "enrollq-dev-secret-change-me"),
		AdminUser:     env("ENROLLQ_ADMIN_USER", "admin"),
		AdminPassword: env("ENROLLQ_ADMIN_PASSWORD", "admin1234"),
		BcryptCost:    envInt("ENROLLQ_BCRYPT_COST", 10),
		HTTPAddr:      env("ENROLLQ_HTTP_ADDR", "127.0.0.1:8081"),
		WSAddr:        env("ENROLLQ_WS_ADDR", "127.0.0.1:8082"),
		WSPublicURL:   env("ENROLLQ_WS_PUBLIC_URL", "/ws"),
		TokenTTL:      envDuration("ENROLLQ_TOKEN_TTL", 2*time.Hour),
		BatchSize:     envInt("ENROLLQ_BATCH_SIZE", 500),
		WebDir:        env("ENROLLQ_WEB_DIR", "web"),

		AOFCompactEvery: envDuration("ENROLLQ_AOF_COMPACT_EVERY", 30*time.Second),
	}
}

func env(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(k)); err == nil {
		return v
	}
	return def
}
