package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/revocation"
)

// ErrPasswordChangeRequired: the token was issued for the initial password;
// only a password change is allowed with it.
var ErrPasswordChangeRequired = errors.New("password change required")

// MinAdminPasswordLen is the shortest bootstrap admin password production
// mode creates an account with (config.MinAdminPasswordLen).
const MinAdminPasswordLen = 12

type securityState struct {
	dummyOnce sync.Once
	dummy     string
	checks    atomic.Int64
}

// PasswordChecks is how many bcrypt comparisons logins have run (tests count
// that a login budget holds under concurrency).
func (s *Service) PasswordChecks() int64 { return s.sec.checks.Load() }

func (s *Service) checkPassword(hash, pw string) bool {
	s.sec.checks.Add(1)
	return auth.CheckPassword(hash, pw)
}

// dummyHash is compared against when an account is unknown, so a login takes
// as long whether or not it exists: same cost as the real hashes.
func (s *Service) dummyHash() string {
	s.sec.dummyOnce.Do(func() {
		s.sec.dummy, _ = auth.HashPassword("enrollq-no-such-user", s.bcryptCost())
	})
	return s.sec.dummy
}

// CheckToken refuses a token whose version is older than its subject's
// (auth.ErrRevoked), and a must-change token anywhere but the password
// change (ErrPasswordChangeRequired, unless allowMustChange).
func (s *Service) CheckToken(ctx context.Context, c auth.Claims, allowMustChange bool) error {
	if s.Versions != nil {
		if err := s.Versions.Check(ctx, c); err != nil {
			return err
		}
	}
	if c.MustChange && !allowMustChange {
		return ErrPasswordChangeRequired
	}
	return nil
}

// SessionToken issues a fresh token for the student in c from their row (the
// current version, no must-change flag once the password was changed).
func (s *Service) SessionToken(ctx context.Context, c auth.Claims) (string, auth.Claims, error) {
	const q = `SELECT id, student_no, year, token_version, must_change_password FROM students WHERE id = ?`
	var row struct {
		ID         int64  `db:"id"`
		StudentNo  string `db:"student_no"`
		Year       int    `db:"year"`
		Version    int64  `db:"token_version"`
		MustChange bool   `db:"must_change_password"`
	}
	if err := s.DB.GetContext(ctx, &row, q, c.Subject); err != nil {
		return "", auth.Claims{}, fmt.Errorf("session token: %w", err)
	}
	nc := auth.Claims{Kind: auth.KindStudent, Subject: row.ID, StudentNo: row.StudentNo, Year: row.Year,
		Version: row.Version, MustChange: row.MustChange}
	return s.Signer.Issue(nc, s.TokenTTL), nc, nil
}

// announce tells the other processes a subject's version was bumped.
func (s *Service) announce(ctx context.Context, kind string, id int64) error {
	if s.Versions == nil {
		return nil
	}
	return s.Versions.Announce(ctx, kind, id)
}

// RevokeSessions bumps the token version of the student with studentNo: every
// token issued to them before stops working (ErrUnknownUser if none).
func (s *Service) RevokeSessions(ctx context.Context, studentNo string) (string, error) {
	var row struct {
		ID        int64  `db:"id"`
		StudentNo string `db:"student_no"`
	}
	err := s.DB.GetContext(ctx, &row, `SELECT id, student_no FROM students WHERE student_no = ?`, studentNo)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrUnknownUser
	}
	if err != nil {
		return "", fmt.Errorf("revoke sessions: %w", err)
	}
	if _, err := s.DB.ExecContext(ctx, `UPDATE students SET token_version = token_version + 1 WHERE id = ?`, row.ID); err != nil {
		return "", fmt.Errorf("revoke sessions: %w", err)
	}
	return row.StudentNo, s.announce(ctx, revocation.Student, row.ID)
}

// GeneratePassword returns a random password of 24 URL-safe characters.
func GeneratePassword() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// BootstrapAdmin makes sure a registrar can log in on a fresh install:
//
//   - with pw given, the account user is created unless it exists (an
//     existing account keeps the password it has, changed through the API);
//     outside development mode pw must be at least MinAdminPasswordLen;
//   - without pw, outside development mode, and only if no admin exists at
//     all, the account is created with a generated password that is written
//     once to stderr (and the log) at creation, never again.
//
// It returns the generated password ("" when none was generated).
func (s *Service) BootstrapAdmin(ctx context.Context, user, pw string) (string, error) {
	if user == "" {
		return "", nil
	}
	generated := ""
	if pw == "" {
		if s.Dev {
			return "", nil
		}
		var n int
		if err := s.DB.GetContext(ctx, &n, `SELECT COUNT(*) FROM admins`); err != nil {
			return "", fmt.Errorf("bootstrap admin: %w", err)
		}
		if n > 0 {
			return "", nil
		}
		pw = GeneratePassword()
		generated = pw
	} else if !s.Dev && len(pw) < MinAdminPasswordLen {
		return "", fmt.Errorf("bootstrap admin: ENROLLQ_ADMIN_PASSWORD shorter than %d characters", MinAdminPasswordLen)
	}
	var n int
	if err := s.DB.GetContext(ctx, &n, `SELECT COUNT(*) FROM admins WHERE username = ?`, user); err != nil {
		return "", fmt.Errorf("bootstrap admin: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	h, err := auth.HashPassword(pw, s.bcryptCost())
	if err != nil {
		return "", fmt.Errorf("bootstrap admin: %w", err)
	}
	res, err := s.DB.ExecContext(ctx, `INSERT IGNORE INTO admins (username, password_hash) VALUES (?, ?)`, user, h)
	if err != nil {
		return "", fmt.Errorf("bootstrap admin: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return "", nil // another instance created it first (and printed its password)
	}
	if generated != "" {
		fmt.Fprintf(os.Stderr, "\n"+
			"==================================================================\n"+
			" EnrollQ created the registrar account %q with a generated\n"+
			" password, shown ONLY THIS ONCE:\n\n     %s\n\n"+
			" Log in and change it (POST /api/v1/admin/password), or set\n"+
			" ENROLLQ_ADMIN_PASSWORD before the first start next time.\n"+
			"==================================================================\n\n", user, generated)
		s.log().Warn("bootstrap registrar created with a generated password (printed once above on stderr)", "user", user)
	}
	return generated, nil
}

// AccountKey is the key under which login attempts at name are counted:
// MariaDB's own weight string of name in the column's collation
// (utf8mb4_unicode_ci: case and accents folded), after the trailing spaces
// its PAD SPACE comparison ignores, so every spelling that finds the same
// row shares one budget, exactly as the database compares.
func (s *Service) AccountKey(ctx context.Context, name string) (string, error) {
	var k string
	err := s.DB.GetContext(ctx, &k, `SELECT HEX(WEIGHT_STRING(CONVERT(? USING utf8mb4) COLLATE utf8mb4_unicode_ci))`,
		strings.TrimRight(name, " "))
	if err != nil {
		return "", fmt.Errorf("account key: %w", err)
	}
	return k, nil
}

// AdminSessionToken issues a fresh admin token for the admin in c from their
// row (after a password change revoked the older ones).
func (s *Service) AdminSessionToken(ctx context.Context, c auth.Claims) (string, error) {
	var row struct {
		ID       int64  `db:"id"`
		Username string `db:"username"`
		Version  int64  `db:"token_version"`
	}
	if err := s.DB.GetContext(ctx, &row, `SELECT id, username, token_version FROM admins WHERE id = ?`, c.Subject); err != nil {
		return "", fmt.Errorf("admin session token: %w", err)
	}
	return s.Signer.Issue(auth.Claims{Kind: auth.KindAdmin, Subject: row.ID, StudentNo: row.Username, Version: row.Version}, s.TokenTTL), nil
}

// PublicInitialPassword is the initial student password of the fixtures and
// of development mode: public, so production mode refuses it.
const PublicInitialPassword = "enrollq-2026"

// CheckInitialPassword checks the initial password of an import: a valid
// password and, outside development mode, not the public one. Every student
// imported with it must change it at first login (must_change_password).
func (s *Service) CheckInitialPassword(pw string) error {
	if err := checkNewPassword("", pw); err != nil {
		return err
	}
	if !s.Dev && pw == PublicInitialPassword {
		return fmt.Errorf("initial password %q is public (production mode; ENROLLQ_DEV=1 for local development): %w", pw, ErrWeakPassword)
	}
	return nil
}
