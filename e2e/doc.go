// Package e2e runs the real pollrelay binary: SIGKILL and restart,
// signals, store faults, full disks, and the commands as a user runs them.
// TestMain builds the binary once for all of them.
package e2e
