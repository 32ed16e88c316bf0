-- Where each order's current version came from: the shard, batch or CDC, the file, the
-- window or LSN, the epochs. One row per order key, removed ones included (flagged), so
-- support can answer "why is this order (not) in fact_orders" without analysts ever
-- seeing shard ids in the marts. Incremental: re-merges the orders int_orders_deduplicated
-- wrote in builds it has not merged (macros/ledger.sql).
{{
  config(
    materialized='incremental',
    unique_key='order_id',
    incremental_strategy='merge',
    on_schema_change='fail',
    pre_hook=[
      "{{ shardflow.ensure_ledger() }}",
      "{{ shardflow.forget_loads() }}",
      "{{ shardflow.claim_builds([ref('int_orders_deduplicated')]) }}"
    ],
    post_hook=["{{ shardflow.consume_loads() }}"]
  )
}}
with
{% if is_incremental() %}
changed as (
    {{ shardflow.keys_to_merge(ref('int_orders_deduplicated'), ['order_id']) }}
),
{% endif %}

seen as (
    select
        order_id,
        count(*) as raw_rows,
        {{ shardflow.sorted_list('shard_id') }} as seen_on_shards
    from {{ ref('stg_shard__orders') }}
    {% if is_incremental() %}where order_id in (select order_id from changed){% endif %}
    group by order_id
),

owned as (
    select order_id, count(*) as owned_rows
    from {{ ref('int_orders_owned') }}
    {% if is_incremental() %}where order_id in (select order_id from changed){% endif %}
    group by order_id
)

select
    l.order_id,
    l.is_removed,
    l.row_version as winning_version,
    l.shard_id as winning_shard_id,
    l.bucket,
    l.source_kind as winning_source,
    l.change_op as winning_op,
    l.registry_epoch,
    l.owner_epoch,
    l.file_key as winning_file_key,
    l.window_start,
    l.window_end,
    l.commit_ts,
    l.lsn,
    l.txid,
    l.loaded_at,
    coalesce(s.raw_rows, 0) as raw_rows,
    coalesce(o.owned_rows, 0) as owned_rows,
    coalesce(s.raw_rows, 0) - coalesce(o.owned_rows, 0) as ignored_rows,
    s.seen_on_shards
from {{ ref('int_orders_deduplicated') }} as l
left join seen as s on s.order_id = l.order_id
left join owned as o on o.order_id = l.order_id
{%- if is_incremental() %}
where l.order_id in (select order_id from changed)
{%- endif %}
