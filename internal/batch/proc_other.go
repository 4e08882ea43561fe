//go:build !linux

package batch

import (
	"os"
	"os/exec"
)

// childAttrs: job processes need no special attributes off Linux.
func childAttrs(*exec.Cmd) {}

// interrupt asks a job to stop; where SIGINT cannot be sent, it is killed.
func interrupt(p *os.Process) error {
	if err := p.Signal(os.Interrupt); err != nil {
		return p.Kill()
	}
	return nil
}

func exitInfo(ee *exec.ExitError) (int, string) {
	if ee.ExitCode() < 0 {
		return ee.ExitCode(), ee.String()
	}
	return ee.ExitCode(), ""
}
