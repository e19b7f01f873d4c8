package main

import "github.com/gin-gonic/gin"

// Idempotent admission: POST /enrollments and POST /cart/register take an
// Idempotency-Key header. A retry with the same key (after a lost answer, a
// 502/503/504, a timeout) gets the original answer, admission or refusal,
// recorded with it inside admit.lua and kept 24 h, and the response header
// Idempotent-Replayed: true; nothing new is queued. Keys are per student.
const (
	idempotencyHeader = "Idempotency-Key"
	replayedHeader    = "Idempotent-Replayed"
	maxIdemKey        = 64
)

// idempotencyKey returns the request's Idempotency-Key ("" without one) and
// whether it is acceptable: once, 1..64 characters of A-Z a-z 0-9 _ - . :
func idempotencyKey(c *gin.Context) (string, bool) {
	vs := c.Request.Header.Values(idempotencyHeader)
	switch len(vs) {
	case 0:
		return "", true
	case 1:
		return vs[0], validIdemKey(vs[0])
	default:
		return "", false
	}
}

func validIdemKey(k string) bool {
	if len(k) == 0 || len(k) > maxIdemKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		switch b := k[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '_', b == '-', b == '.', b == ':':
		default:
			return false
		}
	}
	return true
}

// replayLabel is the admissions metric's result label: a replayed answer
// counts as "replayed" (it queued nothing and must not inflate the
// admission rate).
func replayLabel(replayed bool, label string) string {
	if replayed {
		return "replayed"
	}
	return label
}
