package auth

// This file is self-contained: the catalog importer and the login handler
// share these two functions; the rest of the package is separate.

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// HashPassword returns the bcrypt hash of pw at the given cost
// (bcrypt.MinCost..bcrypt.MaxCost; config.BcryptCost, default 10).
// Passwords longer than 72 bytes are refused rather than silently cut.
func HashPassword(pw string, cost int) (string, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("hash password: bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches hash, in time independent of where
// they differ. A malformed or empty hash never matches.
func CheckPassword(hash, pw string) bool {
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}
