// Package s3test runs versitygw (`make deps-versitygw`, var/bin/versitygw) as a real
// S3-API server on a free loopback port for tests: Start it once per test binary
// (TestMain), make a fresh bucket per test with Bucket, Stop it at the end.
package s3test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shopsphere/shardflow/internal/objstore/s3"
	"github.com/shopsphere/shardflow/internal/testenv"
)

// Root credentials and region of the test server.
const (
	AccessKey = "shardflow-test"
	SecretKey = "shardflow-test-secret-0123456789"
	Region    = "us-east-1"
)

// Server is a running versitygw, or the reason it is not running.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Why      string // set when the server could not start
	dir      string
	proc     *testenv.Process
	seq      atomic.Int64
}

// Start runs `versitygw --port 127.0.0.1:PORT posix --sidecar META DATA` over a
// temporary directory and waits until it answers ListBuckets. It never fails: a server that
// cannot start records why in Why, and Need skips (under CI=true fails) the tests.
func Start() *Server {
	s := &Server{}
	root, err := testenv.FindRoot()
	if err != nil {
		s.Why = err.Error()
		return s
	}
	bin := filepath.Join(root, "var/bin/versitygw")
	if _, err := os.Stat(bin); err != nil {
		s.Why = bin + " is missing: run `make deps-versitygw`"
		return s
	}
	if s.dir, err = os.MkdirTemp("", "versitygw-*"); err != nil {
		s.Why = err.Error()
		return s
	}
	addr, err := testenv.FreeAddr()
	if err != nil {
		s.Why = err.Error()
		return s
	}
	// Object metadata goes to a sidecar directory rather than xattrs (not every
	// filesystem has them); --nometa would break multipart uploads, whose parts'
	// ETags versitygw keeps as metadata.
	data, side := filepath.Join(s.dir, "data"), filepath.Join(s.dir, "meta")
	for _, d := range []string{data, side} {
		if err := os.Mkdir(d, 0o755); err != nil {
			s.Why = err.Error()
			return s
		}
	}
	s.proc, err = testenv.StartProcess("versitygw", bin, []string{"--port", addr, "--quiet", "posix", "--sidecar", side, data},
		[]string{"ROOT_ACCESS_KEY=" + AccessKey, "ROOT_SECRET_KEY=" + SecretKey, "VGW_REGION=" + Region})
	if err != nil {
		s.Why = err.Error()
		return s
	}
	endpoint := "http://" + addr
	c := s.client(endpoint)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.ListBuckets(ctx, &awss3.ListBucketsInput{})
		cancel()
		if err == nil {
			s.Endpoint = endpoint
			return s
		}
	}
	s.Stop()
	s.Why = "versitygw did not answer on " + addr + " within 30s"
	return s
}

func (s *Server) client(endpoint string) *awss3.Client {
	return awss3.NewFromConfig(aws.Config{Region: Region, Credentials: credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")},
		func(o *awss3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true })
}

// Client is a plain SDK client of the server, for checks behind the store's back.
func (s *Server) Client() *awss3.Client { return s.client(s.Endpoint) }

// Stop kills the server and removes its directory. With VERSITYGW_KEEP_LOG set it keeps
// the server's log and prints its path.
func (s *Server) Stop() {
	s.proc.Stop()
	s.proc = nil
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// Need skips the test (under CI: fails it) when the server is not running.
func (s *Server) Need(t testing.TB) {
	t.Helper()
	if s.Endpoint != "" {
		return
	}
	testenv.Missing(t, "versitygw: "+s.Why)
}

// Bucket creates a new, empty bucket and returns its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	s.Need(t)
	name := fmt.Sprintf("test-%d-%d", os.Getpid(), s.seq.Add(1))
	if _, err := s.Client().CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// Config is the store configuration of bucket under prefix on this server.
func (s *Server) Config(bucket, prefix string) s3.Config {
	return s3.Config{Bucket: bucket, Prefix: prefix, Region: Region, Endpoint: s.Endpoint,
		Credentials: s3.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey}}
}
