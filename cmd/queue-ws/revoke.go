package main

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/enrollq/enrollq/internal/auth"
)

var errUnavailable = apiError{http.StatusServiceUnavailable, "unavailable", "일시적으로 처리할 수 없습니다. 잠시 후 다시 시도하세요.", "Temporarily unavailable; retry shortly."}

var errTokenRevoked = apiError{http.StatusUnauthorized, "token_revoked", "로그인이 취소되었습니다(비밀번호 변경 또는 관리자 조치). 다시 로그인하세요.", "This session was revoked (password change or registrar action); log in again."}

// checkVersion refuses a ws token whose version is older than its student's
// (a password change or a registrar's revoke since it was issued).
func (s *server) checkVersion(c *gin.Context, claims auth.Claims) bool {
	if s.versions == nil {
		return true
	}
	err := s.versions.Check(c.Request.Context(), claims)
	switch {
	case err == nil:
		return true
	case errors.Is(err, auth.ErrRevoked):
		abort(c, errTokenRevoked)
	default:
		abort(c, errUnavailable)
	}
	return false
}
