package auth

import (
	"strings"
	"testing"
)

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("enrollq-2026", 4)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2a$04$") {
		t.Fatalf("hash %q: want bcrypt cost 4", h)
	}
	if !CheckPassword(h, "enrollq-2026") {
		t.Error("right password refused")
	}
	for _, pw := range []string{"", "enrollq-2025", "enrollq-2026 "} {
		if CheckPassword(h, pw) {
			t.Errorf("wrong password %q accepted", pw)
		}
	}
	if CheckPassword("", "") || CheckPassword("not-a-hash", "x") {
		t.Error("malformed hash matched")
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		pw   string
		cost int
	}{
		{"cost too low", "pw", 3},
		{"cost too high", "pw", 32},
		{"longer than 72 bytes", strings.Repeat("x", 73), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := HashPassword(tc.pw, tc.cost); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}
