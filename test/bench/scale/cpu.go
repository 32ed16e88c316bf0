package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's utime and stime. It is
// 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) would need cgo).
const clockTicks = 100

// selfCPU is the CPU time (user + system) this process has used so far.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// procCPU is the CPU time (user + system) process pid has used so far, from
// /proc/<pid>/stat: here, a PostgreSQL backend serving one of our connections (the
// clusters run on this machine, as the postgres user; root may read its stat).
func procCPU(pid uint32) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("backend cpu: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: count the
	// fields after its closing parenthesis. utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("backend cpu: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("backend cpu: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("backend cpu: /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// cpuMeter samples this process and a set of backends, before and after a run.
type cpuMeter struct {
	pids        []uint32
	self, procs time.Duration
}

func newCPUMeter(pids []uint32) *cpuMeter { return &cpuMeter{pids: pids} }

func (m *cpuMeter) sample() (self, procs time.Duration, err error) {
	if self, err = selfCPU(); err != nil {
		return 0, 0, err
	}
	for _, p := range m.pids {
		d, err := procCPU(p)
		if err != nil {
			return 0, 0, err
		}
		procs += d
	}
	return self, procs, nil
}

// start records the counters; stop returns what was used since start, by this process
// (the client: extract, tokenize, Parquet) and by the backends (the shards' side).
func (m *cpuMeter) start() error {
	var err error
	m.self, m.procs, err = m.sample()
	return err
}

func (m *cpuMeter) stop() (client, server time.Duration, err error) {
	s, p, err := m.sample()
	if err != nil {
		return 0, 0, err
	}
	return s - m.self, p - m.procs, nil
}
