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

	// Students, carts, waitlists and the registrar's routes (issue #5).
	errMethodNotAllowed = apiError{http.StatusMethodNotAllowed, "method_not_allowed", "허용되지 않는 메서드입니다.", "This method is not allowed on this path."}
	errBadQuery         = apiError{http.StatusBadRequest, "bad_query", "검색 조건이 올바르지 않습니다.", "A query parameter is invalid."}
	errWeakPassword     = apiError{http.StatusBadRequest, "weak_password", "새 비밀번호는 8–72자이고 이전 비밀번호와 달라야 합니다.", "The new password must be 8–72 characters and differ from the old one."}
	errInCart           = apiError{http.StatusConflict, "already_in_cart", "이미 장바구니에 담긴 강좌입니다.", "This section is already in your cart."}
	errNotInCart        = apiError{http.StatusNotFound, "not_in_cart", "장바구니에 없는 강좌입니다.", "This section is not in your cart."}
	errCartFull         = apiError{http.StatusConflict, "cart_full", "장바구니가 가득 찼습니다(최대 15개).", "Your cart is full (at most 15 sections)."}
	errCartOrder        = apiError{http.StatusBadRequest, "bad_cart_order", "새 순서에는 장바구니의 강좌가 정확히 한 번씩 있어야 합니다.", "The new order must list every section in the cart exactly once."}
	errSeatsAvailable   = apiError{http.StatusConflict, "seats_available", "빈자리가 있는 강좌는 대기자 명단에 오를 수 없습니다. 수강신청을 하세요.", "This section has free seats: register instead of joining the waitlist."}
	errAlreadyListed    = apiError{http.StatusConflict, "already_waitlisted", "이미 대기자 명단에 있습니다.", "You are already on this section's waitlist."}
	errNotListed        = apiError{http.StatusNotFound, "not_waitlisted", "대기자 명단에 없습니다.", "You are not on this section's waitlist."}
	errCapacityTooSmall = apiError{http.StatusConflict, "capacity_below_enrolled", "정원을 현재 수강 인원보다 적게 줄일 수 없습니다.", "Capacity cannot go below the number of students enrolled."}
	errAdminExists      = apiError{http.StatusConflict, "admin_exists", "이미 있는 관리자 아이디입니다.", "An admin with this user name exists."}
	errBadWindow        = apiError{http.StatusBadRequest, "bad_window", "신청 기간은 시작보다 종료가 늦어야 하고 학년은 1–6이어야 합니다.", "A window must close after it opens, and its class year must be 1–6 or empty."}
	errUnknownStudent   = apiError{http.StatusNotFound, "unknown_student", "존재하지 않는 학번입니다.", "No student has this student number."}
	errUnknownJob       = apiError{http.StatusNotFound, "unknown_job", "존재하지 않거나 만료된 작업입니다.", "No such import job (jobs are kept for a day)."}
	errBadFile          = apiError{http.StatusBadRequest, "bad_file", "업로드할 CSV 파일(file)이 없거나 너무 큽니다(최대 16MB).", "Send the CSV as the multipart field \"file\" (at most 16 MB)."}
	errAlreadyPrequeued = apiError{http.StatusConflict, "already_prequeued", "이미 사전 대기열에 담긴 강좌입니다.", "This section is already in your pre-queue entries."}
	errPrequeueFull     = apiError{http.StatusConflict, "prequeue_full", "사전 대기열에는 15개 강좌까지 담을 수 있습니다.", "At most 15 sections per student in the pre-queue."}
	errOpening          = apiError{http.StatusServiceUnavailable, "opening", "수강신청을 여는 중입니다(사전 대기열 추첨). 잠시 후 다시 시도하세요.", "Registration is opening (the pre-queue is being drawn); retry in a moment."}
	errPrequeueWindows  = apiError{http.StatusConflict, "prequeue_with_windows", "학년별 신청 기간이 설정되어 있어 사전 대기열을 열 수 없습니다.", "The pre-queue draws at one opening; remove the class-year windows first."}
	errWindowIsOpen     = apiError{http.StatusConflict, "window_open", "이미 수강신청 기간이 열려 있습니다.", "Registration is already open."}
	errImportInvalid    = apiError{http.StatusUnprocessableEntity, "import_invalid", "파일에 오류가 있어 아무것도 가져오지 않았습니다. 오류 목록을 확인하세요.", "The file has errors; nothing was imported. See the list of rows."}

	// Idempotent admission (issue #15).
	errBadIdemKey = apiError{http.StatusBadRequest, "bad_idempotency_key", "Idempotency-Key 헤더는 영문자, 숫자, _ - . : 로 된 1–64자여야 합니다.", "The Idempotency-Key header must be 1–64 characters of A–Z, a–z, 0–9, _ - . :"}

	// Secure by default (issue #16): revoked sessions, initial passwords.
	errTokenRevoked       = apiError{http.StatusUnauthorized, "token_revoked", "로그인이 취소되었습니다(비밀번호 변경 또는 관리자 조치). 다시 로그인하세요.", "This session was revoked (password change or registrar action); log in again."}
	errPasswordChangeReqd = apiError{http.StatusForbidden, "password_change_required", "초기 비밀번호를 먼저 변경해야 합니다.", "Change your initial password first."}

	// Body caps (issue #16): 64 KiB for JSON bodies, 16 MB for CSV uploads.
	errPayloadTooLarge = apiError{http.StatusRequestEntityTooLarge, "payload_too_large", "요청 본문이 너무 큽니다.", "The request body is too large (JSON bodies: at most 64 KiB; CSV uploads: at most 16 MB)."}
)

// abort writes e as the response.
func abort(c *gin.Context, e apiError) {
	c.AbortWithStatusJSON(e.Status, gin.H{"error": gin.H{"code": e.Code, "message": e.Message, "message_en": e.MessageEN}})
}

// fail maps a domain error onto the API's errors: a dependency that cannot
// be reached is 503 unavailable with Retry-After, anything else unknown 500.
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
		if e.Status == http.StatusServiceUnavailable { // opening, unavailable: ask again in a moment
			c.Header("Retry-After", "1")
		}
		if e == errUnavailable {
			_ = c.Error(err)
		}
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
	{auth.ErrRevoked, errTokenRevoked},
	{app.ErrPasswordChangeRequired, errPasswordChangeReqd},
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
	{app.ErrWeakPassword, errWeakPassword},
	{app.ErrInCart, errInCart},
	{app.ErrNotInCart, errNotInCart},
	{app.ErrCartFull, errCartFull},
	{app.ErrCartOrder, errCartOrder},
	{app.ErrAdminExists, errAdminExists},
	{app.ErrBadWindow, errBadWindow},
	{app.ErrUnknownUser, errUnknownStudent},
	{app.ErrNoJob, errUnknownJob},
	{app.ErrInvalidFile, errImportInvalid},
	{enroll.ErrNotFull, errSeatsAvailable},
	{enroll.ErrAlreadyListed, errAlreadyListed},
	{enroll.ErrNotListed, errNotListed},
	{enroll.ErrCapacityTooSmall, errCapacityTooSmall},
	{enroll.ErrAlreadyPrequeued, errAlreadyPrequeued},
	{enroll.ErrPrequeueFull, errPrequeueFull},
	{enroll.ErrOpening, errOpening},
	{app.ErrPrequeueWindows, errPrequeueWindows},
	{app.ErrWindowIsOpen, errWindowIsOpen},
}

// allErrors lists every stable error, for docs and the OpenAPI test.
var allErrors = []apiError{errBadJSON, errBadID, errUnauthorized, errTokenExpired, errTokenInvalid, errBadCredentials,
	errAdminOnly, errForbidden, errWindowClosed, errNotFound, errUnknownCourse, errSoldOut, errAlreadyQueued,
	errAlreadyEnroll, errCourseClosed, errTooLate, errNotEnrolled, errRateLimited, errUnavailable, errInternal,
	errMethodNotAllowed, errBadQuery, errWeakPassword, errInCart, errNotInCart, errCartFull, errCartOrder,
	errSeatsAvailable, errAlreadyListed, errNotListed, errCapacityTooSmall, errAdminExists, errBadWindow,
	errUnknownStudent, errUnknownJob, errBadFile, errImportInvalid, errAlreadyPrequeued, errPrequeueFull, errOpening,
	errPrequeueWindows, errWindowIsOpen, errBadIdemKey, errPayloadTooLarge,
	errTokenRevoked, errPasswordChangeReqd}

// errorBody is the JSON of e.
func errorBody(e apiError) gin.H {
	return gin.H{"code": e.Code, "message": e.Message, "message_en": e.MessageEN}
}

// classify returns the API error err maps to, if any: a domain error of
// errorTable, or unavailable when a dependency could not be reached.
func classify(err error) (apiError, bool) {
	for _, t := range errorTable {
		if errors.Is(err, t.target) {
			return t.e, true
		}
	}
	if dependencyDown(err) {
		return errUnavailable, true
	}
	return apiError{}, false
}
