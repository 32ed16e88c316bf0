{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}
-- The inputs of every finance run: per (run, shard, table), the load high-water mark the
-- run read up to, with the files, rows and checksum sum loaded up to it (from
-- raw._load_history). Append-only: a run's inputs are never rewritten.
-- With --vars '{finance_replay_of: RUN}', the new run copies RUN's inputs: a re-run of
-- a past run on exactly the same data.
{% set replay = var('finance_replay_of') %}
{% if replay %}
select
    cast('{{ shardflow.finance_run_id() }}' as varchar) as run_id,
    shard_id, table_name, hwm_loaded_at, files, input_rows, input_checksum
from {{ this }}
where run_id = '{{ replay }}'
{% else %}
select
    cast('{{ shardflow.finance_run_id() }}' as varchar) as run_id,
    cast(shard_id as varchar) as shard_id,
    cast(table_name as varchar) as table_name,
    cast(hwm_loaded_at as {{ shardflow.type_instant() }}) as hwm_loaded_at,
    cast(files as bigint) as files,
    cast(input_rows as bigint) as input_rows,
    cast(input_checksum as {{ shardflow.type_checksum() }}) as input_checksum
from ({{ shardflow.finance_current_inputs() }}) as current_inputs
{% endif %}
