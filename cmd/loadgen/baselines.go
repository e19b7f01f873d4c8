package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// Baselines are what Redis and MariaDB manage alone on this machine,
// measured in the same run by scripts/loadtest.sh, and the seeds' published
// JMeter figures; the report shows the run's rates as ratios to them.
type Baselines struct {
	Redis struct {
		PerS  float64 `json:"per_s"`
		P50MS float64 `json:"p50_ms"`
		P99MS float64 `json:"p99_ms"`
	} `json:"redis_admit_evalsha"`
	MariaDB struct {
		RowsPerS float64 `json:"rows_per_s"`
	} `json:"mariadb_batched_insert"`
	Raw    map[string]any     `json:"raw"`
	Ratios map[string]float64 `json:"ratios"`
}

// Published figures of the seed systems' JMeter runs: 100k registrations at
// about 1,500 TPS on three autoscaled servers, 598 TPS on one.
const (
	seedTPS3Servers = 1500.0
	seedTPS1Server  = 598.0
)

// readBaselines reads the file scripts/loadtest.sh writes.
func readBaselines(file string) (*Baselines, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("baselines: %w", err)
	}
	var b Baselines
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("baselines %s: %w", file, err)
	}
	if err := json.Unmarshal(raw, &b.Raw); err != nil {
		return nil, fmt.Errorf("baselines %s: %w", file, err)
	}
	return &b, nil
}

// ratios relates the run's rates to the baselines and the seeds' figures.
func (b *Baselines) ratios(admitRate, answerRate, drainRate float64) map[string]float64 {
	r := map[string]float64{}
	div := func(name string, a, d float64) {
		if d > 0 {
			r[name] = round3(a / d)
		}
	}
	div("admit_rate/redis_evalsha", admitRate, b.Redis.PerS)
	div("answer_rate/redis_evalsha", answerRate, b.Redis.PerS)
	div("drain_rate/mariadb_insert_rows", drainRate, b.MariaDB.RowsPerS)
	div("answer_rate/seed_1500tps_3_servers", answerRate, seedTPS3Servers)
	div("answer_rate/seed_598tps_1_server", answerRate, seedTPS1Server)
	div("drain_rate/seed_1500tps_3_servers", drainRate, seedTPS3Servers)
	div("drain_rate/seed_598tps_1_server", drainRate, seedTPS1Server)
	return r
}
