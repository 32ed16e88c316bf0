//go:build cdce2e

package cdc_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/capacity"
	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
)

// BenchmarkCDCReplicas (`make bench-scale`) measures horizontal `tokenize cdc`: one
// backlog of change events on 8 partitions (the payments topics of 8 shards, produced
// straight into Kafka so the consumer alone is measured), drained by 1 and then by 2
// replica processes in a group of their own, each into a lake of its own. The rate is
// events from the first landed file to the last commit; the replicas share this
// machine's cores, so the figure shows what a second process buys here, not on a
// second machine. Set SHARDFLOW_RATES to record it in the rates file.
func BenchmarkCDCReplicas(b *testing.B) {
	const shards, perPartition = 8, 25_000
	root := cdctest.Require(b)
	stack := cdctest.Start(b)
	base, err := os.ReadFile(filepath.Join(root, "shards.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	text, err := registry.Generate(base, shards, 0)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	regFile := filepath.Join(dir, "shards.yaml")
	if err := os.WriteFile(regFile, text, 0o644); err != nil {
		b.Fatal(err)
	}
	reg, err := registry.Load(regFile)
	if err != nil {
		b.Fatal(err)
	}
	total := produceBacklog(b, stack.Brokers, reg, shards, perPartition)

	results := map[int]float64{}
	var report bytes.Buffer
	tw := tabwriter.NewWriter(&report, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "replicas\tevents\tseconds\tevents/s\tvs 1 replica\t\n")
	for _, n := range []int{1, 2} {
		lake := filepath.Join(dir, fmt.Sprintf("lake-%d", n))
		reg := bytes.Replace(text, []byte("path: var/lake"), []byte("path: "+lake), 1)
		f := filepath.Join(dir, fmt.Sprintf("shards-%d.yaml", n))
		if err := os.WriteFile(f, reg, 0o644); err != nil {
			b.Fatal(err)
		}
		events, secs := drainWith(b, stack.Brokers, f, fmt.Sprintf("bench-replicas-%d", n), n, total, filepath.Join(dir, fmt.Sprintf("consumers-%d.log", n)))
		results[n] = float64(events) / secs
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.0f\t%.2fx\t\n", n, events, secs, results[n], results[n]/results[1])
	}
	tw.Flush()
	fmt.Printf("\nCDC consumer replicas (tokenize cdc follow processes, one group), %d events on %d partitions, %s\n%s",
		total, shards, capacity.MachineCores(), report.String())
	b.ReportMetric(results[1], "events/s-1-replica")
	b.ReportMetric(results[2], "events/s-2-replicas")
	if path := os.Getenv("SHARDFLOW_RATES"); path != "" {
		if !filepath.IsAbs(path) {
			path = filepath.Join(testenv.Root(b), path)
		}
		err := capacity.UpdateRates(path, capacity.Rates{
			"cdc_replicas_events_per_s_1": {Value: results[1], Unit: "events/s", Bench: "make bench-scale (BenchmarkCDCReplicas)", Note: "one tokenize cdc process draining a backlog on 8 partitions"},
			"cdc_replicas_events_per_s_2": {Value: results[2], Unit: "events/s", Reference: results[1], Bench: "make bench-scale (BenchmarkCDCReplicas)", Note: "two processes in one group, same cores; reference: one"},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// produceBacklog writes perPartition payments events for each of the first shards'
// payments topics and returns how many.
func produceBacklog(b *testing.B, brokers []string, reg *registry.Registry, shards, perPartition int) int64 {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var perr error
	for s := range shards {
		shard := fmt.Sprintf("s%02d", s)
		topic := "shardflow." + shard + ".public.payments"
		cust := int64(0)
		for c := int64(1); c < 1_000_000; c++ {
			if reg.Owns(shard, reg.Bucket(c), time.Now()) {
				cust = c
				break
			}
		}
		for i := range perPartition {
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Topic: topic, Value: paymentEvent(reg, "c", s*perPartition+i, cust, 1, int64(100+i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					perr = err
					mu.Unlock()
				}
				wg.Done()
			})
		}
	}
	wg.Wait()
	if perr != nil {
		b.Fatal(perr)
	}
	return int64(shards * perPartition)
}

// drainWith starts n follow replicas of group on the registry file and returns the
// events committed after the group's first commit and the seconds that took (so the
// processes' start and the group's first join are not counted).
func drainWith(b *testing.B, brokers []string, regFile, group string, n int, total int64, logPath string) (int64, float64) {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	var cmds []*exec.Cmd
	for i := range n {
		args := []string{"--flush-interval", "1s", "--group", group, "--instance-id", fmt.Sprintf("%s-%d", group, i), "--brokers", strings.Join(brokers, ",")}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "SHARDFLOW_REGISTRY="+regFile, "SHARDFLOW_ENV=local", childEnv+"="+strings.Join(args, " "))
		cmd.Stderr = logf
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var first time.Time
	var atFirst int64
	for {
		var done int64
		if offs, err := adm.FetchOffsets(ctx, group); err == nil {
			offs.Each(func(o kadm.OffsetResponse) { done += o.At })
		}
		if done > 0 && first.IsZero() {
			first, atFirst = time.Now(), done
		}
		if done >= total {
			return total - atFirst, time.Since(first).Seconds()
		}
		if ctx.Err() != nil {
			b.Fatalf("group %s committed %d of %d events in 10 minutes (log %s)", group, done, total, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
