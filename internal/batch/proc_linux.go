package batch

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// childAttrs puts a job in its own process group, so that a Ctrl-C on the terminal reaches
// only the batch (which forwards exactly one SIGINT), and asks the kernel to send it SIGINT
// if the batch dies (even of SIGKILL): the job then saves a checkpoint and exits instead of
// training on, unsupervised. Pdeathsig follows the thread that started the child, so
// the caller keeps that goroutine locked to its thread until the child is gone.
func childAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
}

// interrupt asks a job to checkpoint and stop.
func interrupt(p *os.Process) error { return p.Signal(os.Interrupt) }

// exitInfo returns a finished child's exit code, 128+N when signal N killed it, and a
// description of the signal.
func exitInfo(ee *exec.ExitError) (int, string) {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return ee.ExitCode(), ""
}
