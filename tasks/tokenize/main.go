// Command tokenize lands PCI values in their landed form (docs/contracts.md §4): the
// CDC consumer that lands the shards' change topics (tokenized before Kafka by the
// connectors' transform; it verifies them), and an operator's look-up of a value's
// token. See --help, docs/pci.md and docs/objstore.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/shopsphere/shardflow/internal/buildinfo"
	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

const help = `tokenize deals in PCI column values' landed form: HMAC-SHA256 tokens
tok_<key id>_..., last4 and bin digits, free text with card numbers replaced by their
tokens (docs/contracts.md §4); drop-policy columns are never carried.

usage:
  tokenize cdc [--bounded] [flags]        consume every shard's Debezium topics (tokenized
                                          in the Connect worker, docs/pci.md) and land
                                          Parquet + manifests by offset range
                                          (tokenize cdc --help; docs/cdc.md)
  tokenize lookup --column NAME [--table T] [--key-id ID] < values
                                          print the landed form of each value read from
                                          stdin, one per line (tokenize lookup --help)

environment:
  SHARDFLOW_REGISTRY   path to shards.yaml (default shards.yaml)
  SHARDFLOW_ENV        environment in shards.yaml (default local): object store, Kafka
  <tokenizer.key.env>  lookup: the tokenizer key, at least 32 bytes, e.g.
                       SHARDFLOW_TOKEN_KEY (cdc holds no key)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE
                       S3 credentials; without them the SDK's default chain
                       (IRSA / web identity, container or instance credentials)

exit codes: 0 done (cdc: also with partitions quarantined at a poison event, which
'shardctl quarantine' lists and releases); 2 usage or configuration; 3 a data check
failed; 4 schema drift; 75 retry later (Kafka or the object store unreachable); 1 other.
`

func main() {
	command.Main("tokenize", func(ctx context.Context, env map[string]string) error {
		return run(ctx, os.Args[1:], env, os.Stdin, os.Stdout, os.Stderr)
	})
}

func run(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return exitcode.Errorf(exitcode.Usage, "a subcommand is required: cdc or lookup")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, help)
		return nil
	case "cdc":
		return cdc.Command(ctx, args[1:], env, stdout, stderr, cdcDeps(env))
	case "lookup":
		return tokenize.LookupCommand(ctx, args[1:], env, stdin, stdout, stderr)
	}
	fmt.Fprint(stderr, help)
	return exitcode.Errorf(exitcode.Usage, "unknown subcommand %q: want cdc or lookup", args[0])
}

// cdcDeps are the batch path's seams: the environment's object store and the landing
// Parquet writer, so both paths land the same bytes.
func cdcDeps(env map[string]string) cdc.Deps {
	creds := backend.CredentialsFromEnv(env)
	return cdc.Deps{
		OpenStore: func(ctx context.Context, cfg registry.ObjectStore) (objstore.Store, error) {
			return backend.Open(ctx, cfg, creds)
		},
		NewWriter: func(w io.Writer, cols []landing.Column) (landing.FileWriter, error) {
			pw, err := landing.NewParquetWriter(w, cols)
			if err != nil {
				return nil, err
			}
			return pw, nil
		},
		CodeVersion: buildinfo.CodeVersion(),
	}
}
