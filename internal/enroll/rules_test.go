package enroll

import (
	"testing"
	"time"
)

func TestMeetingOverlaps(t *testing.T) {
	tests := []struct {
		name string
		a, b Meeting
		want bool
	}{
		{"same slot", Meeting{0, 540, 600}, Meeting{0, 540, 600}, true},
		{"partial", Meeting{0, 540, 600}, Meeting{0, 570, 660}, true},
		{"contained", Meeting{1, 540, 720}, Meeting{1, 600, 630}, true},
		{"touching end to start", Meeting{0, 540, 600}, Meeting{0, 600, 660}, false},
		{"touching start to end", Meeting{0, 600, 660}, Meeting{0, 540, 600}, false},
		{"other day", Meeting{0, 540, 600}, Meeting{1, 540, 600}, false},
		{"disjoint", Meeting{2, 540, 600}, Meeting{2, 700, 760}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Overlaps(tt.b); got != tt.want {
				t.Fatalf("%v.Overlaps(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := tt.b.Overlaps(tt.a); got != tt.want {
				t.Fatalf("overlap not symmetric for %v, %v", tt.a, tt.b)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	algo := Course{ID: 1, Code: "CSE3001", Credits: 3, Capacity: 40, Enrolled: 10, Open: true,
		Meetings: []Meeting{{0, 540, 615}, {2, 540, 615}}}
	algo2 := Course{ID: 2, Code: "CSE3001", Credits: 3, Capacity: 40, Open: true,
		Meetings: []Meeting{{1, 540, 615}}}
	db := Course{ID: 3, Code: "CSE3002", Credits: 3, Capacity: 30, Open: true,
		Meetings: []Meeting{{0, 600, 660}}} // overlaps algo on MON
	after := Course{ID: 4, Code: "CSE3003", Credits: 3, Capacity: 30, Open: true,
		Meetings: []Meeting{{0, 615, 690}}} // touches algo's end
	full := Course{ID: 5, Code: "GEN1001", Credits: 2, Capacity: 20, Enrolled: 20, Open: true}
	closed := Course{ID: 6, Code: "GEN1002", Credits: 2, Capacity: 20, Open: false}
	big := Course{ID: 7, Code: "GEN1003", Credits: 6, Capacity: 20, Open: true}
	zero := Course{ID: 8, Code: "GEN1004", Credits: 1, Capacity: 0, Open: true}

	withAlgo := Student{ID: 9, Year: 2, MaxCredits: 18, Enrolled: []Course{algo}}
	atLimit := Student{ID: 9, MaxCredits: 7, Enrolled: []Course{algo, db}}

	tests := []struct {
		name string
		s    Student
		c    Course
		want Reason
	}{
		{"free seat", Student{MaxCredits: 18}, algo, ReasonNone},
		{"already enrolled", withAlgo, algo, ReasonAlreadyEnrolled},
		{"other section same code", withAlgo, algo2, ReasonSameCode},
		{"time conflict", withAlgo, db, ReasonTimeConflict},
		{"touching is fine", withAlgo, after, ReasonNone},
		{"full", withAlgo, full, ReasonFull},
		{"capacity zero", withAlgo, zero, ReasonFull},
		{"closed", withAlgo, closed, ReasonCourseClosed},
		{"credit limit exceeded", atLimit, full, ReasonCreditLimit},
		{"credit limit exactly reached", Student{MaxCredits: 9, Enrolled: []Course{algo}}, big, ReasonNone},
		{"credit limit one over", Student{MaxCredits: 8, Enrolled: []Course{algo}}, big, ReasonCreditLimit},
		{"closed beats full", withAlgo, Course{ID: 10, Code: "X", Credits: 1, Capacity: 0, Open: false}, ReasonCourseClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Check(tt.s, tt.c); got != tt.want {
				t.Fatalf("Check = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWindowOpen(t *testing.T) {
	base := time.Date(2026, 2, 10, 10, 0, 0, 0, time.UTC)
	all := Window{Opens: base, Closes: base.Add(4 * time.Hour)}
	seniors := Window{Year: 4, Opens: base.Add(-24 * time.Hour), Closes: base}
	ws := []Window{all, seniors}
	tests := []struct {
		name string
		ws   []Window
		year int
		at   time.Time
		want bool
	}{
		{"no windows configured", nil, 1, base, true},
		{"before opening", ws, 2, base.Add(-time.Second), false},
		{"at opening instant", ws, 2, base, true},
		{"inside", ws, 3, base.Add(time.Hour), true},
		{"at closing instant", ws, 3, base.Add(4 * time.Hour), false},
		{"senior priority window", ws, 4, base.Add(-time.Hour), true},
		{"junior in senior window", ws, 3, base.Add(-time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WindowOpen(tt.ws, tt.year, tt.at); got != tt.want {
				t.Fatalf("WindowOpen = %v, want %v", got, tt.want)
			}
		})
	}
}
