{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}
-- depends_on: {{ ref('dim_finance_runs') }}
-- Every finance run's daily numbers, append-only: one row per (run, business day,
-- currency, region). A run reads only the raw rows within its recorded high-water marks
-- (fct_finance_run_inputs), so its numbers never change afterwards and can be recomputed
-- and compared (dbt run-operation verify_finance_run).
{%- set day_from, day_to = none, none %}
{#- The day range comes from this run's manifest row, written just before. When the
    manifest table does not exist yet (dbt compile / docs generate on an empty
    warehouse), compile with no bounds; a real run always finds its row. -#}
{%- if execute and load_relation(ref('dim_finance_runs')) is not none %}
  {%- set r = run_query("select cast(day_from as varchar), cast(day_to as varchar) from " ~ ref('dim_finance_runs') ~ " where run_id = '" ~ shardflow.finance_run_id() ~ "'") %}
  {%- if r.rows | length == 1 %}
    {%- set day_from, day_to = r.rows[0][0], r.rows[0][1] %}
  {%- elif flags.WHICH in ('run', 'build') %}
    {{ exceptions.raise_compiler_error("finance run " ~ shardflow.finance_run_id() ~ ": no row in dim_finance_runs") }}
  {%- endif %}
{%- endif %}
select
    cast('{{ shardflow.finance_run_id() }}' as varchar) as run_id,
    d.business_day,
    d.currency,
    d.region,
    d.gross_cents,
    d.refunds_cents,
    d.net_cents,
    d.charges,
    d.refunds
from ({{ shardflow.finance_daily_sql("'" ~ shardflow.finance_run_id() ~ "'", day_from, day_to) }}) as d
