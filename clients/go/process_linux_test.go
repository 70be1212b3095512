package llmrouter_test

import (
	"os/exec"
	"syscall"
)

// stopWithParent makes the kernel send SIGTERM to the server if the test
// process dies first (a test timeout, for example).
func stopWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
