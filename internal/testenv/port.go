package testenv

import (
	"fmt"
	"net"

	"github.com/shopsphere/shardflow/internal/fleet"
)

// reserved are the loopback port ranges of the stacks an operator runs on this machine
// by hand (make up's shards from fleet.DefaultBasePort; make cdc-up's Kafka and Connect,
// make airflow, make docs and make demo-cdc in 18000-19999): tests keep out of them.
var reserved = [][2]int{{fleet.DefaultBasePort, fleet.DefaultBasePort + 100}, {18000, 20000}}

// FreePorts returns n distinct loopback ports that were free when it was called,
// outside the reserved ranges. Another process can still take one before the caller
// binds it; the harnesses that start servers retry on a clash.
func FreePorts(n int) ([]int, error) {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		held = append(held, l) // held until all are picked, so no port is returned twice
		if p := l.Addr().(*net.TCPAddr).Port; !isReserved(p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// FreeAddr is one free loopback address, 127.0.0.1:PORT.
func FreeAddr() (string, error) {
	p, err := FreePorts(1)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p[0]), nil
}

func isReserved(p int) bool {
	for _, r := range reserved {
		if p >= r[0] && p < r[1] {
			return true
		}
	}
	return false
}
