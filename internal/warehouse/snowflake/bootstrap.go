package snowflake

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	"github.com/shopsphere/shardflow/internal/registry"
)

// Bootstrap is what a Snowflake account needs before the pipeline's first load, beyond
// what shards.yaml says (the database, raw schema, stage and landing bucket come from
// there): the names of the roles and warehouses, and the AWS role Snowflake assumes to
// read the landing bucket. Defaults match dbt/profiles.yml (role TRANSFORMER, warehouse
// TRANSFORMING).
type Bootstrap struct {
	Integration   string // storage integration, e.g. SHARDFLOW_LANDING
	AWSRoleARN    string // the IAM role the integration assumes (reads the landing prefix)
	Monitor       string // resource monitor over the pipeline's warehouses
	CreditQuota   int    // credits a month; the warehouses are suspended at 100%
	LoadWH        string // warehouse of load and dq
	TransformWH   string // warehouse of dbt
	Size          string // warehouse size of both, e.g. XSMALL
	AutoSuspend   int    // seconds
	LoaderRole    string // load: COPY into raw, its history
	TransformRole string // dbt: reads raw, builds staging .. audit
	DQRole        string // dq: reads raw, writes DQ
	AnalystRole   string // analysts: read the marts (analytics, finance), nothing raw
}

// DefaultBootstrap is the bootstrap `shardctl warehouse plan` uses unless told otherwise.
var DefaultBootstrap = Bootstrap{
	Integration: "SHARDFLOW_LANDING", Monitor: "SHARDFLOW_MONITOR", CreditQuota: 100,
	LoadWH: "SHARDFLOW_LOADING", TransformWH: "TRANSFORMING", Size: "XSMALL", AutoSuspend: 60,
	LoaderRole: "SHARDFLOW_LOADER", TransformRole: "TRANSFORMER", DQRole: "SHARDFLOW_DQ", AnalystRole: "ANALYST",
}

// DBTSchemas are the schemas dbt builds into (dbt/dbt_project.yml's +schema values; a
// test keeps them equal).
var DBTSchemas = []string{"REGISTRY", "STAGING", "INTERMEDIATE", "ANALYTICS", "FINANCE", "AUDIT"}

// DQSchema holds dq's results (tasks/dq writes <database>.DQ.DQ_RESULTS).
const DQSchema = "DQ"

// Statement is one bootstrap statement, the role that runs it and why.
type Statement struct {
	Role string // ACCOUNTADMIN (integration, monitor) or SYSADMIN (the rest) or SECURITYADMIN (roles, grants)
	Why  string
	SQL  string
}

var identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

var arnPattern = regexp.MustCompile(`^arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$`)

// BootstrapSQL is the account's bootstrap for environment e (a snowflake warehouse over
// an s3 object store), in the order it must run. Every statement is idempotent (IF NOT
// EXISTS, GRANT), so applying it again changes nothing.
func BootstrapSQL(e *registry.Environment, b Bootstrap) ([]Statement, error) {
	w, o := e.Warehouse, e.ObjectStore
	if w.Kind != "snowflake" {
		return nil, fmt.Errorf("warehouse.kind is %q: the bootstrap is for snowflake", w.Kind)
	}
	if o.Kind != "s3" {
		return nil, fmt.Errorf("object_store.kind is %q: the stage reads an s3 bucket", o.Kind)
	}
	if w.Database == "" {
		return nil, fmt.Errorf("warehouse.database is empty: the bootstrap creates the pipeline's database")
	}
	if !arnPattern.MatchString(b.AWSRoleARN) {
		return nil, fmt.Errorf("the AWS role ARN %q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>): give --aws-role-arn", b.AWSRoleARN)
	}
	stageSchema, stageName, ok := strings.Cut(w.Stage, ".")
	if !ok {
		stageSchema, stageName = w.Schema, w.Stage
	}
	for _, id := range []string{b.Integration, b.Monitor, b.LoadWH, b.TransformWH, b.Size, b.LoaderRole, b.TransformRole, b.DQRole, b.AnalystRole, w.Database, w.Schema, stageSchema, stageName} {
		if !identPattern.MatchString(id) {
			return nil, fmt.Errorf("%q is not a Snowflake identifier", id)
		}
	}
	if b.CreditQuota <= 0 || b.AutoSuspend <= 0 {
		return nil, fmt.Errorf("credit quota %d and auto-suspend %ds must be positive", b.CreditQuota, b.AutoSuspend)
	}
	db := w.Database
	raw := db + "." + w.Schema
	dq := db + "." + DQSchema
	stage := db + "." + stageSchema + "." + stageName
	url := "s3://" + o.Bucket + "/"
	if p := strings.Trim(o.Prefix, "/"); p != "" {
		url += p + "/"
	}
	var out []Statement
	add := func(role, why, format string, args ...any) {
		out = append(out, Statement{Role: role, Why: why, SQL: fmt.Sprintf(format, args...)})
	}

	add("ACCOUNTADMIN", "Snowflake reads the landing prefix through this AWS role; `DESC INTEGRATION` then gives the IAM user ARN and external id for the role's trust policy",
		"CREATE STORAGE INTEGRATION IF NOT EXISTS %s\n  TYPE = EXTERNAL_STAGE\n  STORAGE_PROVIDER = 'S3'\n  ENABLED = TRUE\n  STORAGE_AWS_ROLE_ARN = %s\n  STORAGE_ALLOWED_LOCATIONS = (%s)",
		b.Integration, lit(b.AWSRoleARN), lit(url))
	add("ACCOUNTADMIN", "SYSADMIN creates the stage over the integration",
		"GRANT USAGE ON INTEGRATION %s TO ROLE SYSADMIN", b.Integration)
	add("ACCOUNTADMIN", "a monthly credit budget: notify at 80%, suspend the pipeline's warehouses at 100%",
		"CREATE RESOURCE MONITOR IF NOT EXISTS %s WITH\n  CREDIT_QUOTA = %d\n  FREQUENCY = MONTHLY\n  START_TIMESTAMP = IMMEDIATELY\n  TRIGGERS ON 80 PERCENT DO NOTIFY\n           ON 100 PERCENT DO SUSPEND",
		b.Monitor, b.CreditQuota)
	whs := []struct{ name, why string }{{b.LoadWH, "load and dq (COPY and count/checksum queries)"}, {b.TransformWH, "dbt"}}
	for _, wh := range whs {
		add("SYSADMIN", "the warehouse of "+wh.why+"; it suspends itself when idle",
			"CREATE WAREHOUSE IF NOT EXISTS %s\n  WAREHOUSE_SIZE = %s\n  AUTO_SUSPEND = %d\n  AUTO_RESUME = TRUE\n  INITIALLY_SUSPENDED = TRUE",
			wh.name, b.Size, b.AutoSuspend)
	}
	add("SYSADMIN", "the pipeline's database (shards.yaml warehouse.database)", "CREATE DATABASE IF NOT EXISTS %s", db)
	add("SYSADMIN", "raw tables and their load history (load creates the tables)", "CREATE SCHEMA IF NOT EXISTS %s", raw)
	if stageSchema != w.Schema {
		add("SYSADMIN", "the stage's schema", "CREATE SCHEMA IF NOT EXISTS %s.%s", db, stageSchema)
	}
	add("SYSADMIN", "dq's results", "CREATE SCHEMA IF NOT EXISTS %s", dq)
	for _, s := range DBTSchemas {
		add("SYSADMIN", "built by dbt", "CREATE SCHEMA IF NOT EXISTS %s.%s", db, s)
	}
	add("SYSADMIN", "the landing bucket as load reads it: data keys are relative to its URL",
		"CREATE STAGE IF NOT EXISTS %s\n  URL = %s\n  STORAGE_INTEGRATION = %s\n  FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE)",
		stage, lit(url), b.Integration)
	for _, wh := range whs {
		add("ACCOUNTADMIN", "the credit budget covers it", "ALTER WAREHOUSE %s SET RESOURCE_MONITOR = %s", wh.name, b.Monitor)
	}

	grant := func(why, format string, args ...any) { add("SECURITYADMIN", why, format, args...) }
	for _, r := range []struct{ name, why string }{{b.LoaderRole, "load"}, {b.TransformRole, "dbt"}, {b.DQRole, "dq"}, {b.AnalystRole, "analysts"}} {
		grant("the role of "+r.why, "CREATE ROLE IF NOT EXISTS %s", r.name)
		grant("SYSADMIN manages what the role owns", "GRANT ROLE %s TO ROLE SYSADMIN", r.name)
		grant(r.why+" uses the database", "GRANT USAGE ON DATABASE %s TO ROLE %s", db, r.name)
	}
	for _, r := range []string{b.LoaderRole, b.TransformRole, b.DQRole} {
		// load, dq and dbt each start with CREATE SCHEMA IF NOT EXISTS of their schemas
		// (created above), which Snowflake checks against this privilege
		grant("its CREATE SCHEMA IF NOT EXISTS of the schemas above", "GRANT CREATE SCHEMA ON DATABASE %s TO ROLE %s", db, r)
	}
	// load and dq run with one secret (shards.yaml warehouse.dsn): its user's role is
	// the loader's, which holds dq's
	grant("load and dq share warehouse.dsn: the loader's role holds dq's", "GRANT ROLE %s TO ROLE %s", b.DQRole, b.LoaderRole)
	// load: creates and writes the raw tables and their history, reads the stage
	grant("load's warehouse", "GRANT USAGE ON WAREHOUSE %s TO ROLE %s", b.LoadWH, b.LoaderRole)
	grant("load creates the raw tables (CREATE TABLE IF NOT EXISTS) and owns them", "GRANT USAGE, CREATE TABLE ON SCHEMA %s TO ROLE %s", raw, b.LoaderRole)
	if stageSchema != w.Schema {
		grant("load reaches the stage", "GRANT USAGE ON SCHEMA %s.%s TO ROLE %s", db, stageSchema, b.LoaderRole)
	}
	grant("load's COPY reads the stage", "GRANT USAGE ON STAGE %s TO ROLE %s", stage, b.LoaderRole)
	// dbt: reads raw, builds its schemas
	grant("dbt's warehouse", "GRANT USAGE ON WAREHOUSE %s TO ROLE %s", b.TransformWH, b.TransformRole)
	grant("dbt reads raw", "GRANT USAGE ON SCHEMA %s TO ROLE %s", raw, b.TransformRole)
	grant("dbt reads the raw tables load made", "GRANT SELECT ON ALL TABLES IN SCHEMA %s TO ROLE %s", raw, b.TransformRole)
	grant("and the ones load makes later", "GRANT SELECT ON FUTURE TABLES IN SCHEMA %s TO ROLE %s", raw, b.TransformRole)
	for _, s := range DBTSchemas {
		grant("dbt builds tables and views here", "GRANT USAGE, CREATE TABLE, CREATE VIEW ON SCHEMA %s.%s TO ROLE %s", db, s, b.TransformRole)
	}
	// dq: reads raw, writes DQ
	grant("dq's warehouse", "GRANT USAGE ON WAREHOUSE %s TO ROLE %s", b.LoadWH, b.DQRole)
	grant("dq reads raw", "GRANT USAGE ON SCHEMA %s TO ROLE %s", raw, b.DQRole)
	grant("dq reads the raw tables", "GRANT SELECT ON ALL TABLES IN SCHEMA %s TO ROLE %s", raw, b.DQRole)
	grant("and later ones", "GRANT SELECT ON FUTURE TABLES IN SCHEMA %s TO ROLE %s", raw, b.DQRole)
	grant("dq creates and appends to DQ_RESULTS", "GRANT USAGE, CREATE TABLE ON SCHEMA %s TO ROLE %s", dq, b.DQRole)
	// analysts: the marts only; raw and the intermediates (tokens, lineage) stay out of reach
	for _, s := range []string{"ANALYTICS", "FINANCE"} {
		grant("analysts read the marts", "GRANT USAGE ON SCHEMA %s.%s TO ROLE %s", db, s, b.AnalystRole)
		grant("the tables dbt builds there", "GRANT SELECT ON FUTURE TABLES IN SCHEMA %s.%s TO ROLE %s", db, s, b.AnalystRole)
		grant("and its views", "GRANT SELECT ON FUTURE VIEWS IN SCHEMA %s.%s TO ROLE %s", db, s, b.AnalystRole)
	}
	grant("analysts query on dbt's warehouse (or give them their own)", "GRANT USAGE ON WAREHOUSE %s TO ROLE %s", b.TransformWH, b.AnalystRole)
	return out, nil
}

// FormatBootstrap renders statements as a script: each with its role and why as
// comments, `USE ROLE` where the role changes.
func FormatBootstrap(stmts []Statement) string {
	var b strings.Builder
	role := ""
	for _, s := range stmts {
		if s.Role != role {
			role = s.Role
			fmt.Fprintf(&b, "\nUSE ROLE %s;\n", role)
		}
		fmt.Fprintf(&b, "-- %s\n%s;\n", s.Why, s.SQL)
	}
	return strings.TrimPrefix(b.String(), "\n")
}

// ApplyBootstrap runs stmts in order on one connection, switching role where a
// statement's role differs from the last (USE ROLE lasts for the session). progress is
// called before each. It returns how many statements ran before an error.
func ApplyBootstrap(ctx context.Context, conn *sql.Conn, stmts []Statement, progress func(int, Statement)) (int, error) {
	role := ""
	for i, s := range stmts {
		if progress != nil {
			progress(i, s)
		}
		if s.Role != role {
			if _, err := conn.ExecContext(ctx, "USE ROLE "+s.Role); err != nil {
				return i, fmt.Errorf("USE ROLE %s: %w", s.Role, err)
			}
			role = s.Role
		}
		if _, err := conn.ExecContext(ctx, s.SQL); err != nil {
			return i, fmt.Errorf("%s: %w", firstLine(s.SQL), err)
		}
	}
	return len(stmts), nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
