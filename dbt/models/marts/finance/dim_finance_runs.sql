{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}
-- One row per finance run, append-only: what pins it, the dimension every finance fact's
-- run_id refers to. With fct_finance_run_inputs (the load high-water marks per shard and
-- table) this is the run's manifest: the code version (git sha, passed as a var), the
-- registry epoch in force, the business days it covers, and the run it replays, if any.
-- Runs are ordered by run_seq; fct_finance_daily shows each day from its latest run.
{%- set replay = var('finance_replay_of') %}
{%- set day_from = var('finance_day_from') %}
{%- set day_to = var('finance_day_to') %}

with

{% if is_incremental() %}
previous as (select coalesce(max(run_seq), 0) as run_seq from {{ this }}),
{% if replay %}
replayed as (select day_from, day_to from {{ this }} where run_id = '{{ replay }}'),
{% endif %}
{% endif %}

epoch as (
    select max(epoch) as registry_epoch
    from {{ ref('shard_ownership') }}
    where (valid_from is null or valid_from <= current_timestamp) and not coalesce(pending, false)
)

select
    cast('{{ shardflow.finance_run_id() }}' as varchar) as run_id,
    cast({% if is_incremental() %}(select run_seq from previous) + 1{% else %}1{% endif %} as bigint) as run_seq,
    cast(current_timestamp as {{ shardflow.type_instant() }}) as started_at,
    cast('{{ var("code_version") }}' as varchar) as code_version,
    cast(epoch.registry_epoch as integer) as registry_epoch,
{%- if replay %}
    {%- if execute and not is_incremental() %}{{ exceptions.raise_compiler_error("finance replay: no finance run recorded yet") }}{% endif %}
    (select day_from from replayed) as day_from,
    (select day_to from replayed) as day_to,
    cast('{{ replay }}' as varchar) as replay_of,
{%- else %}
    cast({{ "'" ~ day_from ~ "'" if day_from else 'null' }} as date) as day_from,
    cast({{ "'" ~ day_to ~ "'" if day_to else 'null' }} as date) as day_to,
    cast(null as varchar) as replay_of,
{%- endif %}
    cast('{{ invocation_id }}' as varchar) as dbt_invocation_id
from epoch
