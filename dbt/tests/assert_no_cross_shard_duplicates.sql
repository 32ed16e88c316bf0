-- Cross-shard duplicates: no global order key may have owned versions from two shards
-- whose validity overlaps, i.e. its latest owned version must be unique across shards.
-- The ownership filter admits one owner per (bucket, instant), so two shards can both
-- hold owned versions of a key only across a move (old shard before the cutover, new
-- shard after); then the versions must not tie. Any row here means two shards both
-- claim the same version of one order: double counting in the making. It reads the whole
-- history: tagged full_history (the CDC micro-batch leaves it to the hourly build).
{{ config(tags=['full_history']) }}
with owned as (
    select order_id, row_version, shard_id
    from {{ ref('int_orders_owned') }}
    where change_op <> 'd'
),

latest as (
    select order_id, max(row_version) as row_version
    from owned
    group by order_id
)

select o.order_id, o.row_version, count(distinct o.shard_id) as shards
from owned as o
inner join latest as l on l.order_id = o.order_id and l.row_version = o.row_version
group by o.order_id, o.row_version
having count(distinct o.shard_id) > 1
