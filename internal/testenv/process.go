package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Process is a test server's process: it runs in a process group of its own (Stop kills
// the group, children included) and dies with the test binary (Pdeathsig); its output
// goes to a temporary log file.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
}

// StartProcess starts bin with args; env is added to the test's own environment. name
// names the log file and the variable that keeps it (see Stop).
func StartProcess(name, bin string, args, env []string) (*Process, error) {
	log, err := os.CreateTemp("", name+"-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		os.Remove(log.Name())
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &Process{name: name, cmd: cmd, log: log}, nil
}

// Stop kills the process group and waits for the process. Its log is removed, unless
// <NAME>_KEEP_LOG is set (VERSITYGW_KEEP_LOG for name versitygw): then its path is
// printed. Stop on a stopped or nil Process does nothing.
func (p *Process) Stop() {
	if p == nil || p.cmd == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.cmd.Wait()
	p.cmd = nil
	p.log.Close()
	if os.Getenv(strings.ToUpper(p.name)+"_KEEP_LOG") != "" {
		fmt.Fprintf(os.Stderr, "%s log: %s\n", p.name, p.log.Name())
	} else {
		os.Remove(p.log.Name())
	}
}
