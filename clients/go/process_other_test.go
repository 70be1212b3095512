//go:build !linux

package llmrouter_test

import "os/exec"

// stopWithParent has no portable equivalent outside Linux; the test process
// stops the server itself when it ends normally.
func stopWithParent(*exec.Cmd) {}
