package main

import (
	"strings"
	"testing"
)

func TestNginxBudget(t *testing.T) {
	conf := `
user root root;
worker_processes 2;   # two cores
worker_rlimit_nofile 20000;
events {
    worker_connections 10000;
    multi_accept on;
}`
	l, err := parseNginxLimits(strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if l != (nginxLimits{Workers: 2, WorkerConnections: 10000}) {
		t.Fatalf("limits = %+v", l)
	}
	// 20000 connections − 512 (HTTP clients) − 512 (upstream keep-alive) − 512,
	// two per WebSocket, 85% of that.
	if b := l.budget(256); b.Max != (20000-512-512-512)/2*85/100 || !strings.Contains(b.Reason, "worker_connections 10000") {
		t.Errorf("budget = %+v", b)
	}
	if l, _ := parseNginxLimits(strings.NewReader("events {}")); l.WorkerConnections != 512 || l.Workers != 1 {
		t.Errorf("defaults = %+v", l)
	}
	if b := ownBudget(20000, 256); b.Max != 20000-512-1024 {
		t.Errorf("own budget = %+v", b)
	}
	if b := ownBudget(1000, 256); b.Max != 0 {
		t.Errorf("own budget below zero = %+v", b)
	}
}

func TestCapWS(t *testing.T) {
	sts := make([]*student, 10)
	for i := range sts {
		sts[i] = &student{idx: int32(i), withWS: i%2 == 0}
	}
	if n := capWS(sts, wsBudget{Max: 3}); n != 3 {
		t.Fatalf("kept %d, want 3", n)
	}
	var kept []int32
	for _, st := range sts {
		if st.withWS {
			kept = append(kept, st.idx)
		}
	}
	if len(kept) != 3 || kept[0] != 0 || kept[1] != 2 || kept[2] != 4 {
		t.Errorf("kept %v, want [0 2 4]", kept)
	}
}
