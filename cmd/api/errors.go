package main

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/enrollq/enrollq/internal/app"
	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/enroll"
)

// apiError is one stable error of the API: HTTP status, code, and messages
// in Korean (message) and English (message_en).
type apiError struct {
	Status    int
	Code      string
	Message   string
	MessageEN string
}

var (
	errBadJSON        = apiError{http.StatusBadRequest, "bad_request", "요청 형식이 올바르지 않습니다.", "The request body is not valid JSON of the expected shape."}
	errBadID          = apiError{http.StatusBadRequest, "bad_id", "잘못된 식별자입니다.", "The id in the path must be a positive integer."}
	errUnauthorized   = apiError{http.StatusUnauthorized, "unauthorized", "로그인이 필요합니다.", "Authentication required."}
	errTokenExpired   = apiError{http.StatusUnauthorized, "token_expired", "로그인이 만료되었습니다. 다시 로그인하세요.", "Your session has expired; log in again."}
	errTokenInvalid   = apiError{http.StatusUnauthorized, "token_invalid", "유효하지 않은 인증 토큰입니다.", "The authentication token is invalid."}
	errBadCredentials = apiError{http.StatusUnauthorized, "bad_credentials", "학번 또는 비밀번호가 올바르지 않습니다.", "Wrong student number or password."}
	errAdminOnly      = apiError{http.StatusForbidden, "admin_only", "관리자만 사용할 수 있습니다.", "Only registrar staff may do this."}
	errForbidden      = apiError{http.StatusForbidden, "forbidden", "다른 학생의 요청에는 접근할 수 없습니다.", "This belongs to another student."}
	errWindowClosed   = apiError{http.StatusForbidden, "window_closed", "수강신청 기간이 아닙니다.", "Registration is not open for you now."}
	errNotFound       = apiError{http.StatusNotFound, "not_found", "찾을 수 없습니다.", "Not found."}
	errUnknownCourse  = apiError{http.StatusNotFound, "unknown_course", "존재하지 않는 강좌입니다.", "No such course section."}
	errSoldOut        = apiError{http.StatusConflict, "sold_out", "정원이 마감되었습니다.", "This section is full."}
	errAlreadyQueued  = apiError{http.StatusConflict, "already_queued", "이미 대기열에 있는 신청입니다.", "You already have a pending request for this section."}
	errAlreadyEnroll  = apiError{http.StatusConflict, "already_enrolled", "이미 수강신청한 강좌입니다.", "You are already enrolled in this section."}
	errCourseClosed   = apiError{http.StatusConflict, "course_closed", "폐강되었거나 신청할 수 없는 강좌입니다.", "This section is closed."}
	errTooLate        = apiError{http.StatusConflict, "already_decided", "이미 처리 중이거나 처리된 신청입니다.", "This request is already being decided or was decided."}
	errNotEnrolled    = apiError{http.StatusNotFound, "not_enrolled", "수강 중인 강좌가 아닙니다.", "You are not enrolled in this section."}
	errRateLimited    = apiError{http.StatusTooManyRequests, "rate_limited", "요청이 너무 많습니다. 잠시 후 다시 시도하세요.", "Too many requests; retry later."}
	errUnavailable    = apiError{http.StatusServiceUnavailable, "unavailable", "일시적으로 처리할 수 없습니다. 잠시 후 다시 시도하세요.", "Temporarily unavailable; retry shortly."}
	errInternal       = apiError{http.StatusInternalServerError, "internal", "서버 오류가 발생했습니다.", "Internal server error."}
)

// abort writes e as the response.
func abort(c *gin.Context, e apiError) {
	c.AbortWithStatusJSON(e.Status, gin.H{"error": gin.H{"code": e.Code, "message": e.Message, "message_en": e.MessageEN}})
}

// fail maps a domain error onto the API's errors (unknown → 500).
func fail(c *gin.Context, err error) {
	var rl *enroll.RateLimitError
	if errors.As(err, &rl) {
		c.Header("Retry-After", strconv.Itoa(int(rl.RetryAfter.Seconds())+1))
		abort(c, errRateLimited)
		return
	}
	var aq *enroll.AlreadyQueuedError
	if errors.As(err, &aq) {
		e := errAlreadyQueued
		c.AbortWithStatusJSON(e.Status, gin.H{"error": gin.H{"code": e.Code, "message": e.Message, "message_en": e.MessageEN, "request_id": aq.RequestID}})
		return
	}
	if e, ok := classify(err); ok {
		abort(c, e)
		return
	}
	_ = c.Error(err)
	abort(c, errInternal)
}

// errorTable maps domain sentinels onto API errors, first match wins.
var errorTable = []struct {
	target error
	e      apiError
}{
	{app.ErrBadCredentials, errBadCredentials},
	{app.ErrBadInput, errBadJSON},
	{auth.ErrExpired, errTokenExpired},
	{auth.ErrInvalid, errTokenInvalid},
	{auth.ErrWrongKind, errTokenInvalid},
	{enroll.ErrWindowClosed, errWindowClosed},
	{enroll.ErrSoldOut, errSoldOut},
	{enroll.ErrAlreadyEnrolled, errAlreadyEnroll},
	{enroll.ErrUnknownCourse, errUnknownCourse},
	{enroll.ErrCourseClosed, errCourseClosed},
	{enroll.ErrForbidden, errForbidden},
	{enroll.ErrTooLate, errTooLate},
	{enroll.ErrNotEnrolled, errNotEnrolled},
	{enroll.ErrNotFound, errNotFound},
	{enroll.ErrRateLimited, errRateLimited},
	{enroll.ErrAlreadyQueued, errAlreadyQueued},
}

// classify returns the API error err maps to, if any.
func classify(err error) (apiError, bool) {
	for _, t := range errorTable {
		if errors.Is(err, t.target) {
			return t.e, true
		}
	}
	return apiError{}, false
}
