{{
  config(
    materialized='incremental',
    unique_key='order_id',
    incremental_strategy='merge',
    on_schema_change='fail',
    cluster_by=['order_date'],
    pre_hook=[
      "{{ shardflow.ensure_ledger() }}",
      "{{ shardflow.forget_loads() }}",
      "{{ shardflow.claim_builds([ref('int_orders_deduplicated'), ref('int_order_items_deduplicated')]) }}"
    ],
    post_hook=[
      "{{ shardflow.delete_removed_keys(this, ref('int_orders_deduplicated'), 'order_id') }}",
      "{{ shardflow.consume_loads() }}"
    ]
  )
}}
-- One row per order across every shard: the latest owned version of the order and of its
-- lines. Keyed by the global order_id only; shard and bucket never appear here (see
-- audit_order_lineage). Incremental: re-merges the orders the intermediates wrote (an
-- order or one of its lines) in builds it has not merged yet, by the consumed-loads ledger
-- (macros/ledger.sql, decisions/0018, 0020), never by a loaded_at high-water (a load can
-- commit after a later stamped one); the post-hooks remove orders whose latest version is
-- a business delete and mark the claimed builds consumed.

with

{% if is_incremental() %}
changed as (
    {{ shardflow.keys_to_merge(ref('int_orders_deduplicated'), ['order_id']) }}
    union
    {{ shardflow.keys_to_merge(ref('int_order_items_deduplicated'), ['order_id']) }}
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
        sum(quantity * unit_price_cents) as items_subtotal_cents,
        max(loaded_at) as last_loaded_at
    from {{ ref('int_order_items_deduplicated') }}
    where not is_removed
    {% if is_incremental() %}and order_id in (select order_id from changed){% endif %}
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
    case when i.last_loaded_at > o.loaded_at then i.last_loaded_at else o.loaded_at end as last_loaded_at
from orders as o
left join items as i on i.order_id = o.order_id
