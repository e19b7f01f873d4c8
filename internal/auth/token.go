// Package auth issues and verifies EnrollQ's signed, expiring tokens and
// hashes passwords. Tokens are HMAC-SHA256 over a small JSON payload:
// base64url(payload) "." base64url(mac). A token names its kind (access for
// students, admin for registrar staff, ws for a queue-ws connection), so one
// kind can never stand in for another.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kinds of token.
const (
	KindStudent = "student"
	KindAdmin   = "admin"
	KindWS      = "ws"
)

var (
	// ErrInvalid is returned for a malformed or tampered token.
	ErrInvalid = errors.New("invalid token")
	// ErrExpired is returned for a well-signed token past its expiry.
	ErrExpired = errors.New("token expired")
	// ErrWrongKind is returned when a token of another kind is presented.
	ErrWrongKind = errors.New("wrong kind of token")
	// ErrRevoked is returned (by the callers that check versions) for a
	// well-signed token whose version is older than its subject's.
	ErrRevoked = errors.New("token revoked")
)

// Claims is what a token says.
type Claims struct {
	Kind      string `json:"k"`
	Subject   int64  `json:"sub"`           // student id (0 for admins)
	StudentNo string `json:"sno,omitempty"` // student number or admin user name
	Year      int    `json:"yr,omitempty"`  // class year, for priority windows
	Expires   int64  `json:"exp"`           // unix seconds
	// Version is the subject's token_version when the token was issued
	// (students and admins; ws tokens carry their student's). A password
	// change or a registrar's revoke bumps the stored version, and the api
	// refuses a token with an older one (ErrRevoked).
	Version int64 `json:"tv,omitempty"`
	// MustChange: the student logged in with the initial password of the
	// import and may only change it (403 password_change_required elsewhere).
	MustChange bool `json:"pc,omitempty"`
}

// Signer signs and verifies tokens with one secret.
type Signer struct {
	key []byte
	now func() time.Time
}

// NewSigner returns a Signer for secret.
func NewSigner(secret string) *Signer {
	return &Signer{key: []byte(secret), now: time.Now}
}

// WithClock returns a copy of s that reads time from now (for tests).
func (s *Signer) WithClock(now func() time.Time) *Signer {
	return &Signer{key: s.key, now: now}
}

var b64 = base64.RawURLEncoding

// Issue returns a token for c valid for ttl.
func (s *Signer) Issue(c Claims, ttl time.Duration) string {
	c.Expires = s.now().Add(ttl).Unix()
	payload, _ := json.Marshal(c)
	p := b64.EncodeToString(payload)
	return p + "." + b64.EncodeToString(s.mac(p))
}

func (s *Signer) mac(p string) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(p))
	return h.Sum(nil)
}

// Verify checks tok's signature, expiry and kind and returns its claims.
func (s *Signer) Verify(tok, kind string) (Claims, error) {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok || p == "" || sig == "" {
		return Claims{}, ErrInvalid
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(p)) {
		return Claims{}, ErrInvalid
	}
	raw, err := b64.DecodeString(p)
	if err != nil {
		return Claims{}, ErrInvalid
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if c.Kind != kind {
		return Claims{}, ErrWrongKind
	}
	if s.now().Unix() >= c.Expires {
		return Claims{}, ErrExpired
	}
	return c, nil
}
