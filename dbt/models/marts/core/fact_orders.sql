{{
  config(
    materialized='incremental',
    unique_key='order_id',
    incremental_strategy='merge',
    on_schema_change='fail',
    post_hook="{{ shardflow.delete_removed_keys(this, ref('int_orders_deduplicated'), 'order_id') }}"
  )
}}
-- One row per order across every shard: the latest owned version of the order and of its
-- lines. Keyed by the global order_id only; shard and bucket never appear here (see
-- audit_order_lineage). Incremental: re-merges the orders with an owned change (order or
-- line) loaded since the newest last_loaded_at already here; the post-hook removes orders
-- whose latest version is a business delete.

with

{% if is_incremental() %}
high_water as (
    select coalesce(max(last_loaded_at), {{ shardflow.instant_literal('1970-01-01T00:00:00Z') }}) as loaded_at
    from {{ this }}
),

changed as (
    select order_id from {{ ref('int_orders_owned') }}
    where loaded_at >= (select loaded_at from high_water)
    union
    select order_id from {{ ref('int_order_items_owned') }}
    where loaded_at >= (select loaded_at from high_water)
),
{% endif %}

orders as (
    select * from {{ ref('int_orders_deduplicated') }}
    where not is_removed
    {% if is_incremental() %}and order_id in (select order_id from changed){% endif %}
),

items as (
    select
        order_id,
        count(*) as line_count,
        sum(quantity) as item_count,
        sum(quantity * unit_price_cents) as items_subtotal_cents
    from {{ ref('int_order_items_deduplicated') }}
    where not is_removed
    {% if is_incremental() %}and order_id in (select order_id from changed){% endif %}
    group by order_id
),

loads as (
    select order_id, max(loaded_at) as last_loaded_at
    from (
        select order_id, loaded_at from {{ ref('int_orders_owned') }}
        union all
        select order_id, loaded_at from {{ ref('int_order_items_owned') }}
    ) as owned
    {% if is_incremental() %}where order_id in (select order_id from changed){% endif %}
    group by order_id
)

select
    o.order_id,
    o.customer_id,
    o.order_status,
    o.currency,
    o.region,
    o.total_cents,
    o.refunded_cents,
    o.total_cents - o.refunded_cents as net_cents,
    cast(coalesce(i.line_count, 0) as bigint) as line_count,
    cast(coalesce(i.item_count, 0) as bigint) as item_count,
    cast(coalesce(i.items_subtotal_cents, 0) as bigint) as items_subtotal_cents,
    {{ shardflow.utc_day('o.created_at') }} as order_date,
    o.created_at,
    o.updated_at,
    o.row_version as order_version,
    l.last_loaded_at
from orders as o
left join items as i on i.order_id = o.order_id
inner join loads as l on l.order_id = o.order_id
