package sso_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/sso"
	"github.com/enrollq/enrollq/internal/sso/ssotest"
)

const redirect = "http://127.0.0.1:1/api/v1/auth/sso/callback" // never contacted: the test stops there

// spyStore is a MemoryStore that lets the test see and rewrite what is stored.
type spyStore struct {
	*sso.MemoryStore
	last    string
	rewrite func(key string, val []byte) []byte
}

func (s *spyStore) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	s.last = key
	if s.rewrite != nil {
		val = s.rewrite(key, val)
	}
	return s.MemoryStore.Put(ctx, key, val, ttl)
}

func newClient(t *testing.T, p *ssotest.Provider, claim string, st sso.Store) *sso.Client {
	t.Helper()
	c, err := sso.New(context.Background(), sso.Config{Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: p.RedirectURI, StudentClaim: claim}, st)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOIDCCodeFlow runs the authorization code flow with PKCE against the
// real provider process: the ID token's student_no (trimmed) comes back;
// the authorization request carries state, nonce and an S256 challenge.
func TestOIDCCodeFlow(t *testing.T) {
	p := ssotest.Start(t, redirect, ssotest.User{Username: "kim", Password: "pw-kim-1234", StudentNo: "202600007"})
	c := newClient(t, p, "", sso.NewMemoryStore())
	ctx := context.Background()
	authURL, binding, err := c.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if q.Get(k) == "" {
			t.Errorf("authorization URL has no %s: %s", k, authURL)
		}
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
		t.Errorf("authorization URL: %s", authURL)
	}
	back := p.Authorize(t, authURL, "kim", "pw-kim-1234")
	if back.Query().Get("state") != q.Get("state") || back.Query().Get("code") == "" {
		t.Fatalf("redirect back %s", back)
	}
	id, err := c.Finish(ctx, back.Query().Get("state"), back.Query().Get("code"), binding)
	if err != nil {
		t.Fatal(err)
	}
	if id.StudentNo != "202600007" || id.Subject == "" {
		t.Fatalf("identity %+v", id)
	}
	// The state was used up: the same callback again is refused.
	if _, err := c.Finish(ctx, back.Query().Get("state"), back.Query().Get("code"), binding); !errors.Is(err, sso.ErrBadState) {
		t.Fatalf("second callback: %v, want ErrBadState", err)
	}
}

// TestOIDCRefusals: a wrong state, a foreign browser (binding), a replayed
// code, a nonce that is not the login's, and a missing claim are refused.
func TestOIDCRefusals(t *testing.T) {
	p := ssotest.Start(t, redirect, ssotest.User{Username: "lee", Password: "pw-lee-1234", StudentNo: "  202600008 "})
	ctx := context.Background()
	st := &spyStore{MemoryStore: sso.NewMemoryStore()}
	c := newClient(t, p, "", st)

	flow := func() (state, code, binding string) {
		authURL, b, err := c.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		back := p.Authorize(t, authURL, "lee", "pw-lee-1234")
		return back.Query().Get("state"), back.Query().Get("code"), b
	}

	t.Run("wrong state", func(t *testing.T) {
		_, code, b := flow()
		if _, err := c.Finish(ctx, "not-the-state", code, b); !errors.Is(err, sso.ErrBadState) {
			t.Fatalf("%v, want ErrBadState", err)
		}
		if _, err := c.Finish(ctx, "", code, b); !errors.Is(err, sso.ErrBadState) {
			t.Fatalf("empty state: %v", err)
		}
	})
	t.Run("other browser", func(t *testing.T) {
		state, code, _ := flow()
		if _, err := c.Finish(ctx, state, code, "someone-elses-cookie"); !errors.Is(err, sso.ErrBadState) {
			t.Fatalf("%v, want ErrBadState", err)
		}
	})
	t.Run("replayed code", func(t *testing.T) {
		state, code, b := flow()
		if id, err := c.Finish(ctx, state, code, b); err != nil || id.StudentNo != "202600008" {
			t.Fatalf("first use: %+v %v (the claim is trimmed)", id, err)
		}
		// A new login (fresh state, nonce and verifier) presenting the old
		// code: the provider refuses the code a second time.
		authURL, b2, err := c.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(authURL)
		if _, err := c.Finish(ctx, u.Query().Get("state"), code, b2); !errors.Is(err, sso.ErrExchange) {
			t.Fatalf("replayed code: %v, want ErrExchange", err)
		}
	})
	t.Run("wrong nonce", func(t *testing.T) {
		// The stored login expects another nonce than the one the provider
		// puts into the ID token (as for a token minted for another login).
		st.rewrite = func(key string, val []byte) []byte {
			if !strings.HasPrefix(key, "state:") {
				return val
			}
			var m map[string]string
			_ = json.Unmarshal(val, &m)
			m["n"] = "another-nonce"
			b, _ := json.Marshal(m)
			return b
		}
		defer func() { st.rewrite = nil }()
		state, code, b := flow()
		if _, err := c.Finish(ctx, state, code, b); !errors.Is(err, sso.ErrNonce) {
			t.Fatalf("%v, want ErrNonce", err)
		}
	})
	t.Run("no claim", func(t *testing.T) {
		c2 := newClient(t, p, "employee_no", sso.NewMemoryStore())
		authURL, b, err := c2.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		back := p.Authorize(t, authURL, "lee", "pw-lee-1234")
		if _, err := c2.Finish(ctx, back.Query().Get("state"), back.Query().Get("code"), b); !errors.Is(err, sso.ErrNoStudent) {
			t.Fatalf("%v, want ErrNoStudent", err)
		}
	})
	t.Run("one-time code", func(t *testing.T) {
		code, err := c.IssueCode(ctx, []byte(`{"token":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		if b, err := c.Redeem(ctx, code); err != nil || string(b) != `{"token":"x"}` {
			t.Fatalf("redeem: %s %v", b, err)
		}
		if _, err := c.Redeem(ctx, code); !errors.Is(err, sso.ErrBadCode) {
			t.Fatalf("second redeem: %v", err)
		}
	})
}

// TestOIDCDiscoveryFails: a configured but unreachable issuer fails New
// within the timeout, with the issuer in the message.
func TestOIDCDiscoveryFails(t *testing.T) {
	port := ssotest.FreePort(t)
	iss := "http://127.0.0.1:" + strconv.Itoa(port)
	start := time.Now()
	_, err := sso.New(context.Background(), sso.Config{Issuer: iss, ClientID: "x", RedirectURL: redirect, DiscoveryTimeout: 2 * time.Second}, sso.NewMemoryStore())
	if err == nil || !strings.Contains(err.Error(), iss) {
		t.Fatalf("New: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("discovery took %s", time.Since(start))
	}
	if _, err := sso.New(context.Background(), sso.Config{Issuer: iss, RedirectURL: redirect}, sso.NewMemoryStore()); err == nil {
		t.Fatal("New without a client id succeeded")
	}
	if _, err := sso.New(context.Background(), sso.Config{}, nil); !errors.Is(err, sso.ErrDisabled) {
		t.Fatalf("disabled: %v", err)
	}
}
