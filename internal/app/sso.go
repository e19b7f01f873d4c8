package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/enrollq/enrollq/internal/auth"
)

// ErrUnknownSSOStudent: the university's provider signed in someone whose
// student number is not on EnrollQ's roster.
var ErrUnknownSSOStudent = errors.New("sso: no student has this student number")

// SSOLogin issues the student access token for a student the university's
// OpenID provider has authenticated (internal/sso verified the ID token;
// studentNo is its student claim). The token is the one a password login
// issues (SessionToken: the row's canonical number, year and token
// version), except that it never carries the must-change flag: that flag is
// about the local initial password, which a single sign-on does not use.
func (s *Service) SSOLogin(ctx context.Context, studentNo string) (string, auth.Claims, error) {
	studentNo = strings.TrimSpace(studentNo)
	if studentNo == "" || len(studentNo) > 20 {
		return "", auth.Claims{}, ErrUnknownSSOStudent
	}
	var id int64
	if err := s.DB.GetContext(ctx, &id, `SELECT id FROM students WHERE student_no = ?`, studentNo); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", auth.Claims{}, ErrUnknownSSOStudent
		}
		return "", auth.Claims{}, fmt.Errorf("sso login: read student: %w", err)
	}
	tok, c, err := s.SessionToken(ctx, auth.Claims{Kind: auth.KindStudent, Subject: id})
	if err != nil {
		return "", auth.Claims{}, err
	}
	if c.MustChange {
		c.MustChange = false
		tok = s.Signer.Issue(c, s.TokenTTL)
	}
	return tok, c, nil
}
