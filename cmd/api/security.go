package main

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// mustChangeAllowed: the only route a must-change token opens (the student's
// password change; issue #16).
func mustChangeAllowed(c *gin.Context) bool {
	return c.Request.Method == http.MethodPost && c.FullPath() == "/api/v1/auth/password"
}

// revokeSessions: POST /api/v1/admin/students/:student_no/revoke-sessions
// bumps the student's token version, so every token issued to them before
// (access and ws) stops working on every instance within about a second.
func (s *server) revokeSessions(c *gin.Context) {
	no := c.Param("student_no")
	if len(no) == 0 || len(no) > 20 {
		abort(c, errUnknownStudent)
		return
	}
	canon, err := s.svc.RevokeSessions(c.Request.Context(), no)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"student_no": canon, "status": "revoked"})
}
