package config

import (
	"strings"
	"testing"
)

func clearEnv(t *testing.T) {
	for _, k := range []string{"ENROLLQ_DEV", "ENROLLQ_TOKEN_SECRET", "ENROLLQ_ADMIN_PASSWORD", "ENROLLQ_ADMIN_USER",
		"ENROLLQ_BCRYPT_COST", "ENROLLQ_TOKEN_TTL", "ENROLLQ_BATCH_SIZE", "ENROLLQ_AOF_COMPACT_EVERY"} {
		t.Setenv(k, "")
	}
}

const goodSecret = "0123456789abcdef0123456789abcdef-x"

func TestProductionRefusesUnsafeSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, secret, want string
	}{
		{"missing", "", "not set"},
		{"short", "0123456789abcdef0123456789abcde", "shorter than 32"},
		{"known dev default", DevTokenSecret, "shorter than 32"},
		{"known long", "enrollq-dev-secret-change-me", "ENROLLQ_TOKEN_SECRET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("ENROLLQ_TOKEN_SECRET", tc.secret)
			_, err := Load()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// A long value that appears in the repository is refused for being known.
	saved := KnownSecrets
	KnownSecrets = append(KnownSecrets, goodSecret)
	t.Cleanup(func() { KnownSecrets = saved })
	clearEnv(t)
	t.Setenv("ENROLLQ_TOKEN_SECRET", goodSecret)
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "publicly known") {
		t.Fatalf("known long secret: %v", err)
	}
}

func TestProductionDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("ENROLLQ_TOKEN_SECRET", goodSecret)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Dev || c.AdminPassword != "" || c.DevWarning() != "" {
		t.Errorf("production defaults: dev=%v admin password %q warning %q", c.Dev, c.AdminPassword, c.DevWarning())
	}
	for _, pw := range []string{DevAdminPassword, "short-pw", "enrollq-2026"} {
		t.Setenv("ENROLLQ_ADMIN_PASSWORD", pw)
		if _, err := Load(); err == nil {
			t.Errorf("admin password %q accepted in production mode", pw)
		}
	}
	t.Setenv("ENROLLQ_ADMIN_PASSWORD", "a-long-registrar-pw")
	if _, err := Load(); err != nil {
		t.Errorf("good admin password: %v", err)
	}
}

func TestDevMode(t *testing.T) {
	clearEnv(t)
	t.Setenv("ENROLLQ_DEV", "1")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if !c.Dev || c.TokenSecret != DevTokenSecret || c.AdminPassword != DevAdminPassword || c.AdminUser != DevAdminUser {
		t.Errorf("dev defaults: %+v", c)
	}
	if w := c.DevWarning(); !strings.Contains(w, "DEVELOPMENT MODE") || !strings.Contains(w, "public") {
		t.Errorf("warning %q", w)
	}
}

func TestUnparsableValuesFail(t *testing.T) {
	for k, v := range map[string]string{
		"ENROLLQ_BCRYPT_COST": "ten", "ENROLLQ_TOKEN_TTL": "2 hours", "ENROLLQ_BATCH_SIZE": "5x",
		"ENROLLQ_AOF_COMPACT_EVERY": "soon",
	} {
		t.Run(k, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("ENROLLQ_DEV", "1")
			t.Setenv(k, v)
			if _, err := Load(); err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%s=%q: %v", k, v, err)
			}
		})
	}
	clearEnv(t)
	t.Setenv("ENROLLQ_DEV", "1")
	t.Setenv("ENROLLQ_BCRYPT_COST", "99")
	if _, err := Load(); err == nil {
		t.Error("bcrypt cost 99 accepted")
	}
	t.Setenv("ENROLLQ_BCRYPT_COST", "12")
	t.Setenv("ENROLLQ_TOKEN_TTL", "90m")
	c, err := Load()
	if err != nil || c.BcryptCost != 12 || c.TokenTTL.Minutes() != 90 {
		t.Errorf("good values: %+v, %v", c, err)
	}
}
