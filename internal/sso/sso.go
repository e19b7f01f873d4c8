// Package sso signs students in through their university's OpenID Connect
// provider (authorization code flow with PKCE, state and nonce) beside
// EnrollQ's local passwords. It discovers the provider, builds the
// authorization URL, keeps each pending login server-side (Store, Redis in
// production) for a few minutes, exchanges the code, verifies the ID token
// (signature, issuer, audience, expiry, nonce) and returns the student number
// a configurable claim carries. It knows nothing of HTTP routing: cmd/api
// turns it into routes.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors of a sign-in.
var (
	ErrDisabled  = errors.New("sso: single sign-on is not configured")
	ErrBadState  = errors.New("sso: unknown, expired or foreign login state")
	ErrExchange  = errors.New("sso: the provider refused the authorization code")
	ErrIDToken   = errors.New("sso: invalid ID token")
	ErrNonce     = errors.New("sso: ID token nonce does not match the login")
	ErrNoStudent = errors.New("sso: the ID token carries no student number")
	ErrBadCode   = errors.New("sso: unknown, expired or used one-time code")
	ErrProvider  = errors.New("sso: the provider reported an error")
)

// Defaults of Config.
var (
	defaultClaim  = "student_no"
	defaultScopes = []string{oidc.ScopeOpenID, "profile"}
)

// Config is the single sign-on configuration (ENROLLQ_OIDC_*). SSO is off
// when Issuer is empty.
type Config struct {
	Issuer       string   // ENROLLQ_OIDC_ISSUER: the provider's issuer URL (discovery at <issuer>/.well-known/openid-configuration)
	ClientID     string   // ENROLLQ_OIDC_CLIENT_ID
	ClientSecret string   // ENROLLQ_OIDC_CLIENT_SECRET (empty for a public client; PKCE is always used)
	RedirectURL  string   // ENROLLQ_OIDC_REDIRECT_URL: https://<site>/api/v1/auth/sso/callback, registered at the provider
	StudentClaim string   // ENROLLQ_OIDC_STUDENT_CLAIM: ID token claim holding the student number (default student_no)
	Scopes       []string // ENROLLQ_OIDC_SCOPES: space- or comma-separated (default "openid profile")

	DiscoveryTimeout time.Duration // ENROLLQ_OIDC_TIMEOUT: discovery and every call to the provider (default 10s)
	StateTTL         time.Duration // how long a started login may take (default 10m)
	CodeTTL          time.Duration // how long the one-time code handed to the page lives (default 60s)
}

// FromEnv reads the ENROLLQ_OIDC_* variables.
func FromEnv() Config {
	c := Config{
		Issuer:       strings.TrimSpace(os.Getenv("ENROLLQ_OIDC_ISSUER")),
		ClientID:     strings.TrimSpace(os.Getenv("ENROLLQ_OIDC_CLIENT_ID")),
		ClientSecret: os.Getenv("ENROLLQ_OIDC_CLIENT_SECRET"),
		RedirectURL:  strings.TrimSpace(os.Getenv("ENROLLQ_OIDC_REDIRECT_URL")),
		StudentClaim: strings.TrimSpace(os.Getenv("ENROLLQ_OIDC_STUDENT_CLAIM")),
	}
	if v := os.Getenv("ENROLLQ_OIDC_SCOPES"); v != "" {
		c.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	}
	if d, err := time.ParseDuration(os.Getenv("ENROLLQ_OIDC_TIMEOUT")); err == nil && d > 0 {
		c.DiscoveryTimeout = d
	}
	return c
}

// Enabled reports whether single sign-on is configured.
func (c Config) Enabled() bool { return c.Issuer != "" }

func (c Config) withDefaults() Config {
	if c.StudentClaim == "" {
		c.StudentClaim = defaultClaim
	}
	if len(c.Scopes) == 0 {
		c.Scopes = defaultScopes
	}
	hasOpenID := false
	for _, s := range c.Scopes {
		hasOpenID = hasOpenID || s == oidc.ScopeOpenID
	}
	if !hasOpenID {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	if c.DiscoveryTimeout <= 0 {
		c.DiscoveryTimeout = 10 * time.Second
	}
	if c.StateTTL <= 0 {
		c.StateTTL = 10 * time.Minute
	}
	if c.CodeTTL <= 0 {
		c.CodeTTL = time.Minute
	}
	return c
}

// Store keeps short-lived values: Put with a TTL, Take reads and deletes
// at once (so a value is used at most once).
type Store interface {
	Put(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Take returns the value and deletes it; a missing key is (nil, nil).
	Take(ctx context.Context, key string) ([]byte, error)
}

// Client is a configured, discovered relying party.
type Client struct {
	cfg      Config
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	store    Store
	http     *http.Client
}

// New discovers the provider at cfg.Issuer (within cfg.DiscoveryTimeout)
// and returns a Client keeping pending logins in store. It fails when the
// configuration is incomplete or the provider cannot be reached.
func New(ctx context.Context, cfg Config, store Store) (*Client, error) {
	if !cfg.Enabled() {
		return nil, ErrDisabled
	}
	cfg = cfg.withDefaults()
	if cfg.ClientID == "" {
		return nil, errors.New("sso: ENROLLQ_OIDC_CLIENT_ID is required when ENROLLQ_OIDC_ISSUER is set")
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("sso: ENROLLQ_OIDC_REDIRECT_URL %q must be an absolute URL (https://<site>/api/v1/auth/sso/callback)", cfg.RedirectURL)
	}
	if store == nil {
		return nil, errors.New("sso: no store for pending logins")
	}
	hc := &http.Client{Timeout: cfg.DiscoveryTimeout}
	// The provider's context lives as long as the Client: go-oidc fetches
	// the key set with it later. The timeout is the HTTP client's.
	pctx := oidc.ClientContext(context.WithoutCancel(ctx), hc)
	type result struct {
		p   *oidc.Provider
		err error
	}
	done := make(chan result, 1)
	go func() { p, err := oidc.NewProvider(pctx, cfg.Issuer); done <- result{p, err} }()
	var p *oidc.Provider
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("sso: discover OpenID provider %s: %w", cfg.Issuer, r.err)
		}
		p = r.p
	case <-time.After(cfg.DiscoveryTimeout):
		return nil, fmt.Errorf("sso: discover OpenID provider %s: no answer within %s", cfg.Issuer, cfg.DiscoveryTimeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("sso: discover OpenID provider %s: %w", cfg.Issuer, ctx.Err())
	}
	return &Client{
		cfg: cfg,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: p.Endpoint(), Scopes: cfg.Scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		store:    store,
		http:     hc,
	}, nil
}

// Config returns the effective configuration (with defaults).
func (c *Client) Config() Config { return c.cfg }

// pending is a started login, kept server-side under its state.
type pending struct {
	Nonce    string `json:"n"`
	Verifier string `json:"v"` // PKCE code verifier
	Binding  string `json:"b"` // the browser's cookie value
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// key names a stored value by a hash of its secret, never the secret.
func key(kind, secret string) string {
	h := sha256.Sum256([]byte(secret))
	return kind + ":" + hex.EncodeToString(h[:])
}

// Start begins a login: it stores a fresh state, nonce and PKCE verifier
// and returns the provider's authorization URL and the binding value the
// caller must give the browser (an HttpOnly cookie) and hand back to Finish.
func (c *Client) Start(ctx context.Context) (authURL, binding string, err error) {
	state, p := random(), pending{Nonce: random(), Verifier: oauth2.GenerateVerifier(), Binding: random()}
	b, _ := json.Marshal(p)
	if err := c.store.Put(ctx, key("state", state), b, c.cfg.StateTTL); err != nil {
		return "", "", fmt.Errorf("sso: store login state: %w", err)
	}
	return c.oauth.AuthCodeURL(state, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)), p.Binding, nil
}

// Identity is who the provider says signed in.
type Identity struct {
	Subject   string // the provider's sub
	StudentNo string // the student claim, trimmed
}

// Finish completes a login from the callback's state and code and the
// browser's binding value. The state is used up whatever the outcome.
func (c *Client) Finish(ctx context.Context, state, code, binding string) (Identity, error) {
	if state == "" || code == "" {
		return Identity{}, ErrBadState
	}
	b, err := c.store.Take(ctx, key("state", state))
	if err != nil {
		return Identity{}, fmt.Errorf("sso: read login state: %w", err)
	}
	var p pending
	if b == nil || json.Unmarshal(b, &p) != nil || p.Binding == "" ||
		subtle.ConstantTimeCompare([]byte(p.Binding), []byte(binding)) != 1 {
		return Identity{}, ErrBadState
	}
	return c.exchange(ctx, p, code)
}

func (c *Client) exchange(ctx context.Context, p pending, code string) (Identity, error) {
	ctx = oidc.ClientContext(ctx, c.http)
	tok, err := c.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrExchange, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no id_token in the token response", ErrIDToken)
	}
	idt, err := c.verifier.Verify(ctx, raw) // signature, issuer, audience, expiry
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrIDToken, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.Nonce)) != 1 {
		return Identity{}, ErrNonce
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrIDToken, err)
	}
	no := claimString(claims[c.cfg.StudentClaim])
	if no == "" {
		return Identity{}, ErrNoStudent
	}
	return Identity{Subject: idt.Subject, StudentNo: no}, nil
}

// claimString reads a string or number claim, trimmed.
func claimString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return strings.TrimSpace(n.String())
	}
	return ""
}

// IssueCode stores payload under a fresh one-time code that Redeem takes
// back once, within the code TTL.
func (c *Client) IssueCode(ctx context.Context, payload []byte) (string, error) {
	code := random()
	if err := c.store.Put(ctx, key("code", code), payload, c.cfg.CodeTTL); err != nil {
		return "", fmt.Errorf("sso: store one-time code: %w", err)
	}
	return code, nil
}

// Redeem returns the payload of a one-time code and invalidates it.
func (c *Client) Redeem(ctx context.Context, code string) ([]byte, error) {
	if code == "" || len(code) > 100 {
		return nil, ErrBadCode
	}
	b, err := c.store.Take(ctx, key("code", code))
	if err != nil {
		return nil, fmt.Errorf("sso: read one-time code: %w", err)
	}
	if b == nil {
		return nil, ErrBadCode
	}
	return b, nil
}
