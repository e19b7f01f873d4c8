package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := NewSigner("k1").WithClock(func() time.Time { return now })
	tok := s.Issue(Claims{Kind: KindStudent, Subject: 42, StudentNo: "202400001", Year: 2}, time.Hour)

	c, err := s.Verify(tok, KindStudent)
	if err != nil || c.Subject != 42 || c.Year != 2 || c.StudentNo != "202400001" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if _, err := s.Verify(tok, KindAdmin); !errors.Is(err, ErrWrongKind) {
		t.Errorf("student token as admin: %v", err)
	}
	if _, err := s.Verify(tok, KindWS); !errors.Is(err, ErrWrongKind) {
		t.Errorf("student token as ws: %v", err)
	}
	later := s.WithClock(func() time.Time { return now.Add(time.Hour) })
	if _, err := later.Verify(tok, KindStudent); !errors.Is(err, ErrExpired) {
		t.Errorf("expired: %v", err)
	}
	other := NewSigner("k2").WithClock(func() time.Time { return now })
	if _, err := other.Verify(tok, KindStudent); !errors.Is(err, ErrInvalid) {
		t.Errorf("foreign key: %v", err)
	}
	// Tamper with the payload: make the token claim another student.
	p, sig, _ := strings.Cut(tok, ".")
	forged := s.Issue(Claims{Kind: KindStudent, Subject: 43}, time.Hour)
	fp, _, _ := strings.Cut(forged, ".")
	if _, err := s.Verify(fp+"."+sig, KindStudent); !errors.Is(err, ErrInvalid) {
		t.Errorf("payload swapped: %v", err)
	}
	for _, bad := range []string{"", ".", p, p + ".", "." + sig, "a.b", p + "." + sig + "x", "!!!." + sig} {
		if _, err := s.Verify(bad, KindStudent); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%q) = %v, want invalid", bad, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	s := NewSigner("k")
	f.Add(s.Issue(Claims{Kind: KindStudent, Subject: 1}, time.Hour))
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := s.Verify(tok, KindStudent)
		if err == nil && c.Kind != KindStudent {
			t.Fatalf("accepted token of kind %q", c.Kind)
		}
	})
}

// TestTokenVersionAndMustChange: the version and the must-change flag are
// signed with the rest; changing them breaks the signature.
func TestTokenVersionAndMustChange(t *testing.T) {
	s := NewSigner("k1")
	tok := s.Issue(Claims{Kind: KindStudent, Subject: 7, Version: 3, MustChange: true}, time.Hour)
	c, err := s.Verify(tok, KindStudent)
	if err != nil || c.Version != 3 || !c.MustChange {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	_, sig, _ := strings.Cut(tok, ".")
	forged, _, _ := strings.Cut(s.Issue(Claims{Kind: KindStudent, Subject: 7, Version: 9}, time.Hour), ".")
	if _, err := s.Verify(forged+"."+sig, KindStudent); !errors.Is(err, ErrInvalid) {
		t.Errorf("raised version with the old signature: %v", err)
	}
}
