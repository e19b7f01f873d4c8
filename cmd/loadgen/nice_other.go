//go:build !linux

package main

// lowerPriority is a no-op where thread priorities are not set here.
func lowerPriority(int) error { return nil }
