-- Where each order's current version came from: the shard, batch or CDC, the file, the
-- window or LSN, the epochs. One row per order key, removed ones included (flagged), so
-- support can answer "why is this order (not) in fact_orders" without analysts ever
-- seeing shard ids in the marts.
with seen as (
    select
        order_id,
        count(*) as raw_rows,
        {{ shardflow.sorted_list('shard_id') }} as seen_on_shards
    from {{ ref('stg_shard__orders') }}
    group by order_id
),

owned as (
    select order_id, count(*) as owned_rows
    from {{ ref('int_orders_owned') }}
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
    s.raw_rows,
    o.owned_rows,
    s.raw_rows - o.owned_rows as ignored_rows,
    s.seen_on_shards
from {{ ref('int_orders_deduplicated') }} as l
inner join seen as s on s.order_id = l.order_id
inner join owned as o on o.order_id = l.order_id
