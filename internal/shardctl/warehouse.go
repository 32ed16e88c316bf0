package shardctl

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake"
)

func init() {
	register(Command{
		Name:    "warehouse",
		Summary: "bootstrap a Snowflake account for the pipeline: plan (print the SQL) or apply it",
		Usage:   "plan|apply --aws-role-arn ARN [--env production] [--credit-quota N] [--size XSMALL] [--admin-dsn-env VAR]",
		Help: `The one-time setup of a Snowflake account, generated from shards.yaml's environment
(warehouse.database, .schema, .stage; object_store.bucket, .prefix) and the flags:
a storage integration over the landing prefix (the AWS role it assumes), a resource
monitor (monthly credit quota; notify at 80%, suspend at 100%), a warehouse for load and
dq and one for dbt (auto-suspend, auto-resume), the database with the raw, dq and dbt
schemas, the external stage, and four roles with least privilege: load (creates and
writes raw, reads the stage), dbt (reads raw, builds its schemas), dq (reads raw, writes
DQ) and analysts (read the analytics and finance marts only).

  plan    prints the statements, each with the role that runs it and why; changes nothing
  apply   runs them in order through gosnowflake with the DSN in $VAR (default
          SHARDFLOW_SNOWFLAKE_ADMIN_DSN: a user granted ACCOUNTADMIN, SYSADMIN and
          SECURITYADMIN). Every statement is idempotent: apply again changes nothing.

After apply: DESC INTEGRATION <name> gives STORAGE_AWS_IAM_USER_ARN and
STORAGE_AWS_EXTERNAL_ID for the AWS role's trust policy; create the service users (key
pair) and grant each its role; put their DSNs in the secrets shards.yaml names
(docs/runbooks/snowflake-account.md).`,
		Run: runWarehouse,
	})
}

func runWarehouse(ctx context.Context, env Env, args []string) error {
	c := commands["warehouse"]
	if len(args) == 0 || (args[0] != "plan" && args[0] != "apply") {
		return exitcode.Errorf(exitcode.Usage, "warehouse: give plan or apply (shardctl help warehouse)")
	}
	step := args[0]
	fs := newFlags(c, env)
	b := snowflake.DefaultBootstrap
	envName := fs.String("env", "production", "the environment of shards.yaml whose warehouse is bootstrapped")
	fs.StringVar(&b.AWSRoleARN, "aws-role-arn", "", "the IAM role the storage integration assumes to read the landing prefix (required)")
	fs.IntVar(&b.CreditQuota, "credit-quota", b.CreditQuota, "monthly credits of the resource monitor")
	fs.StringVar(&b.Size, "size", b.Size, "warehouse size of both warehouses")
	fs.IntVar(&b.AutoSuspend, "auto-suspend", b.AutoSuspend, "seconds idle before a warehouse suspends")
	dsnEnv := fs.String("admin-dsn-env", "SHARDFLOW_SNOWFLAKE_ADMIN_DSN", "apply: the environment variable holding the admin DSN")
	if err := command.Parse(fs, args[1:]); err != nil {
		return err
	}
	if err := noArgs(fs, "warehouse "+step); err != nil {
		return err
	}
	env.Name = *envName
	_, e, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	stmts, err := snowflake.BootstrapSQL(e, b)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("warehouse %s (environment %s): %w", step, *envName, err))
	}
	if step == "plan" {
		fmt.Fprintf(env.Stdout, "-- the bootstrap of environment %s: %d statements (shardctl warehouse apply runs them)\n%s",
			*envName, len(stmts), snowflake.FormatBootstrap(stmts))
		return nil
	}
	dsn := env.Vars[*dsnEnv]
	if dsn == "" {
		return exitcode.Errorf(exitcode.Usage, "warehouse apply: environment variable %s (the admin DSN) is not set", *dsnEnv)
	}
	db, err := sql.Open("snowflake", dsn)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("warehouse apply: %w", err))
	}
	defer db.Close()
	conn, err := db.Conn(ctx) // USE ROLE holds for the session: one connection
	if err != nil {
		return exitcode.Wrap(exitcode.Retryable, fmt.Errorf("warehouse apply: connect: %w", err))
	}
	defer conn.Close()
	done, err := snowflake.ApplyBootstrap(ctx, conn, stmts, func(i int, s snowflake.Statement) {
		fmt.Fprintf(env.Stdout, "[%d/%d] %s: %s\n", i+1, len(stmts), s.Role, s.Why)
	})
	if err != nil {
		return exitcode.Wrap(exitcode.Retryable, fmt.Errorf("warehouse apply: statement %d of %d: %w (the %d before it are applied; apply again once fixed)", done+1, len(stmts), err, done))
	}
	fmt.Fprintf(env.Stdout, "warehouse apply: %d statements applied to environment %s\n", len(stmts), *envName)
	return nil
}
