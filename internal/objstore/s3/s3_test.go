package s3_test

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/objstore/objstoretest"
	"github.com/shopsphere/shardflow/internal/objstore/s3"
	"github.com/shopsphere/shardflow/internal/objstore/s3/s3test"
)

var server *s3test.Server

func TestMain(m *testing.M) {
	server = s3test.Start()
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

func open(t *testing.T, cfg s3.Config) *s3.Store {
	t.Helper()
	st, err := s3.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// small parts and pages, so multipart uploads and pagination run on small data
func testConfig(t *testing.T, prefix string) s3.Config {
	cfg := server.Config(server.Bucket(t), prefix)
	cfg.PartSize, cfg.ListPageSize = 5<<20, 7
	return cfg
}

func TestContract(t *testing.T) {
	for _, prefix := range []string{"shardflow", ""} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			objstoretest.Run(t, func(t *testing.T) objstore.Store { return open(t, testConfig(t, prefix)) })
		})
	}
}

// keys live under the prefix in the bucket, and a store sees only its own prefix
func TestPrefix(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, "shardflow/")
	a := open(t, cfg)
	cfg.Prefix = "other"
	b := open(t, cfg)
	if err := a.Put(ctx, "landing/x", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "landing/y", strings.NewReader("b")); err != nil {
		t.Fatal(err)
	}
	out, err := server.Client().ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(cfg.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var raw []string
	for _, o := range out.Contents {
		raw = append(raw, aws.ToString(o.Key))
	}
	if !slices.Equal(raw, []string{"other/landing/y", "shardflow/landing/x"}) {
		t.Fatalf("bucket holds %v", raw)
	}
	if keys, err := a.List(ctx, ""); err != nil || !slices.Equal(keys, []string{"landing/x"}) {
		t.Fatalf("List of prefix shardflow = %v %v", keys, err)
	}
}

// a failed multipart Put is aborted: no upload, no parts left behind
func TestFailedPutLeavesNoUpload(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, "p")
	st := open(t, cfg)
	r := io.MultiReader(strings.NewReader(strings.Repeat("x", objstoretest.LargeBytes)), failing{})
	if err := st.Put(ctx, "big", r); err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	r = io.MultiReader(strings.NewReader(strings.Repeat("x", objstoretest.LargeBytes)), cancelling{cancel})
	if err := st.Put(cctx, "big2", r); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	ups, err := server.Client().ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String(cfg.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left, first %s", len(ups.Uploads), aws.ToString(ups.Uploads[0].Key))
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("source died") }

type cancelling struct{ cancel context.CancelFunc }

func (c cancelling) Read(p []byte) (int, error) {
	c.cancel()
	clear(p)
	return len(p), nil
}

func TestConfigValidate(t *testing.T) {
	ok := s3.Config{Bucket: "b", Region: "us-east-1"}
	for name, c := range map[string]func(*s3.Config){
		"bucket":     func(c *s3.Config) { c.Bucket = "" },
		"region":     func(c *s3.Config) { c.Region = "" },
		"secret":     func(c *s3.Config) { c.Credentials.AccessKeyID = "AKIA" },
		"access key": func(c *s3.Config) { c.Credentials.SecretAccessKey = "s" },
		"part size":  func(c *s3.Config) { c.PartSize = 1 << 20 },
		"prefix":     func(c *s3.Config) { c.Prefix = "/abs" },
		"prefix //":  func(c *s3.Config) { c.Prefix = "a//b" },
	} {
		cfg := ok
		c(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), strings.Fields(name)[0]) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Refused credentials and a missing bucket are objstore.ErrDenied (a task exits 1 and is
// not retried); the same store with good credentials is not.
func TestDenied(t *testing.T) {
	ctx := context.Background()
	good := testConfig(t, "p")
	bad := good
	bad.Credentials.SecretAccessKey = "not-the-secret"
	noBucket := good
	noBucket.Bucket = "no-such-bucket-" + strings.ToLower(t.Name())
	for name, cfg := range map[string]s3.Config{"wrong secret": bad, "no bucket": noBucket} {
		st := open(t, cfg)
		err := st.Put(ctx, "k", strings.NewReader("x"))
		if !errors.Is(err, objstore.ErrDenied) {
			t.Errorf("%s: put: %v, want ErrDenied", name, err)
		}
		if _, err := st.List(ctx, ""); !errors.Is(err, objstore.ErrDenied) {
			t.Errorf("%s: list: %v, want ErrDenied", name, err)
		}
		if code := exitcode.Of(objstore.Classify(err)); code != exitcode.Permanent {
			t.Errorf("%s: exit %d, want %d", name, code, exitcode.Permanent)
		}
	}
	if err := open(t, good).Put(ctx, "k", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
}
