// Package config reads EnrollQ's settings from the environment.
//
// Production mode is the default: Load refuses a missing, short (< 32 bytes)
// or publicly known ENROLLQ_TOKEN_SECRET, a known or short bootstrap admin
// password, and any value it cannot parse. ENROLLQ_DEV=1 is the development
// switch (`make run` and the tests set it): the local defaults that match the
// ports and credentials of the project's scripts apply (a public token
// secret, admin/admin1234), and DevWarning says so loudly at startup. See
// README "Configuration".
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the process-wide configuration.
type Config struct {
	// ENROLLQ_DEV=1: development mode (public dev defaults allowed).
	Dev           bool
	DBDSN         string // ENROLLQ_DB_DSN: MariaDB primary
	ReplicaDSN    string // ENROLLQ_REPLICA_DSN: MariaDB replica (reads, search feed)
	RedisAddr     string // ENROLLQ_REDIS_ADDR
	SearchURL     string // ENROLLQ_SEARCH_URL: OpenSearch / Elasticsearch
	SearchIndex   string // ENROLLQ_SEARCH_INDEX: alias name
	Term          string // ENROLLQ_TERM: the term being registered
	TokenSecret   string // ENROLLQ_TOKEN_SECRET: HMAC key for access and ws tokens
	AdminUser     string // ENROLLQ_ADMIN_USER
	AdminPassword string // ENROLLQ_ADMIN_PASSWORD ("" in production: generated once if no admin exists)
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

	parseErrs []error // values FromEnv could not parse (Validate reports them)
}

// Development defaults: public, in the repository. Production mode refuses them.
const (
	DevTokenSecret   = "enrollq-dev-secret-change-me"
	DevAdminUser     = "admin"
	DevAdminPassword = "admin1234"
	// MinSecretLen is the shortest token secret production mode accepts.
	MinSecretLen = 32
	// MinAdminPasswordLen is the shortest bootstrap admin password
	// production mode accepts.
	MinAdminPasswordLen = 12
)

// KnownSecrets are token secrets that appear in the repository (defaults,
// docker-compose, scripts, tests): anyone can sign tokens with them, so
// production mode refuses them whatever their length.
var KnownSecrets = []string{
	DevTokenSecret, "change-me", "changeme", "secret", "test-secret", "e2e-secret",
}

// KnownAdminPasswords are passwords that appear in the repository.
var KnownAdminPasswords = []string{DevAdminPassword, "admin", "password", "admin-pw", "enrollq-2026"}

// DevMode reports whether ENROLLQ_DEV asks for development mode ("1" or "true").
func DevMode() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("ENROLLQ_DEV")))
	return v == "1" || v == "true" || v == "yes"
}

// FromEnv returns the configuration from environment variables with
// defaults, without judging it: in development mode the dev secret and admin
// password fill in when unset, in production mode they stay empty. Values it
// cannot parse keep their default and are reported by Validate; processes
// that serve traffic call Load instead.
func FromEnv() Config {
	c := Config{Dev: DevMode()}
	secret, adminPW := "", ""
	if c.Dev {
		secret, adminPW = DevTokenSecret, DevAdminPassword
	}
	c.DBDSN = env("ENROLLQ_DB_DSN", "enrollq:enrollq@tcp(127.0.0.1:3306)/enrollq")
	c.ReplicaDSN = env("ENROLLQ_REPLICA_DSN", "enrollq:enrollq@tcp(127.0.0.1:3307)/enrollq")
	c.RedisAddr = env("ENROLLQ_REDIS_ADDR", "127.0.0.1:6379")
	c.SearchURL = env("ENROLLQ_SEARCH_URL", "http://127.0.0.1:9200")
	c.SearchIndex = env("ENROLLQ_SEARCH_INDEX", "courses")
	c.Term = env("ENROLLQ_TERM", "2026-1")
	c.TokenSecret = env("ENROLLQ_TOKEN_SECRET", secret)
	c.AdminUser = env("ENROLLQ_ADMIN_USER", DevAdminUser)
	c.AdminPassword = env("ENROLLQ_ADMIN_PASSWORD", adminPW)
	c.BcryptCost = c.envInt("ENROLLQ_BCRYPT_COST", 10)
	c.HTTPAddr = env("ENROLLQ_HTTP_ADDR", "127.0.0.1:8081")
	c.WSAddr = env("ENROLLQ_WS_ADDR", "127.0.0.1:8082")
	c.WSPublicURL = env("ENROLLQ_WS_PUBLIC_URL", "/ws")
	c.TokenTTL = c.envDuration("ENROLLQ_TOKEN_TTL", 2*time.Hour)
	c.BatchSize = c.envInt("ENROLLQ_BATCH_SIZE", 500)
	c.WebDir = env("ENROLLQ_WEB_DIR", "web")
	c.AOFCompactEvery = c.envDuration("ENROLLQ_AOF_COMPACT_EVERY", 30*time.Second)
	return c
}

// Load is FromEnv followed by Validate: what the api and queue-ws start with.
func Load() (Config, error) {
	c := FromEnv()
	return c, c.Validate()
}

// Validate reports every value that was not understood and, in production
// mode, every unsafe secret: a missing, short or known token secret, a short
// or known bootstrap admin password (an empty one is allowed: the api then
// generates one for a fresh install and prints it once).
func (c Config) Validate() error {
	errs := append([]error(nil), c.parseErrs...)
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		errs = append(errs, fmt.Errorf("ENROLLQ_BCRYPT_COST=%d: want 4..31", c.BcryptCost))
	}
	if c.TokenTTL <= 0 {
		errs = append(errs, fmt.Errorf("ENROLLQ_TOKEN_TTL=%s: want a positive duration", c.TokenTTL))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, fmt.Errorf("ENROLLQ_BATCH_SIZE=%d: want a positive integer", c.BatchSize))
	}
	if c.AOFCompactEvery < 0 {
		errs = append(errs, fmt.Errorf("ENROLLQ_AOF_COMPACT_EVERY=%s: want 0 or a positive duration", c.AOFCompactEvery))
	}
	if err := c.CheckSecret(); err != nil {
		errs = append(errs, err)
	}
	if !c.Dev && c.AdminPassword != "" {
		switch {
		case len(c.AdminPassword) < MinAdminPasswordLen:
			errs = append(errs, fmt.Errorf("ENROLLQ_ADMIN_PASSWORD is shorter than %d characters (production mode; ENROLLQ_DEV=1 for local development)", MinAdminPasswordLen))
		case known(KnownAdminPasswords, c.AdminPassword):
			errs = append(errs, errors.New("ENROLLQ_ADMIN_PASSWORD is a publicly known value (production mode; ENROLLQ_DEV=1 for local development)"))
		}
	}
	return errors.Join(errs...)
}

// CheckSecret reports a token secret production mode refuses (nil in
// development mode, unless the secret is empty).
func (c Config) CheckSecret() error {
	switch {
	case c.TokenSecret == "":
		return errors.New("ENROLLQ_TOKEN_SECRET is not set: give it a random value of at least 32 bytes (e.g. `openssl rand -base64 48`), or set ENROLLQ_DEV=1 for local development")
	case c.Dev:
		return nil
	case len(c.TokenSecret) < MinSecretLen:
		return fmt.Errorf("ENROLLQ_TOKEN_SECRET is %d bytes, shorter than %d (production mode; ENROLLQ_DEV=1 for local development)", len(c.TokenSecret), MinSecretLen)
	case known(KnownSecrets, c.TokenSecret):
		return errors.New("ENROLLQ_TOKEN_SECRET is a publicly known value from the repository (production mode; ENROLLQ_DEV=1 for local development)")
	}
	return nil
}

// DevWarning is the warning a process logs at startup in development mode
// ("" in production mode).
func (c Config) DevWarning() string {
	if !c.Dev {
		return ""
	}
	w := "DEVELOPMENT MODE (ENROLLQ_DEV=1): public default secrets may be in use; never expose this instance"
	if c.TokenSecret == DevTokenSecret {
		w += "; the token secret is the public dev default (anyone can sign tokens)"
	}
	if c.AdminPassword == DevAdminPassword {
		w += "; the bootstrap registrar password is the public dev default " + DevAdminUser + "/" + DevAdminPassword
	}
	return w
}

func known(list []string, v string) bool {
	for _, k := range list {
		if v == k {
			return true
		}
	}
	return false
}

func env(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

func (c *Config) envInt(k string, def int) int {
	s, ok := os.LookupEnv(k)
	if !ok || s == "" {
		return def
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		c.parseErrs = append(c.parseErrs, fmt.Errorf("%s=%q: not an integer", k, s))
		return def
	}
	return v
}

func (c *Config) envDuration(k string, def time.Duration) time.Duration {
	s, ok := os.LookupEnv(k)
	if !ok || s == "" {
		return def
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		c.parseErrs = append(c.parseErrs, fmt.Errorf("%s=%q: not a duration (e.g. 30s, 2h)", k, s))
		return def
	}
	return v
}
