-- fact_orders and the intermediates under it are incremental; this recomputes the orders
-- from scratch (latest owned versions of the whole history, business deletes removed) and
-- returns every order on one side only or with different values. Empty means the
-- incremental merges and deletes converged to the full answer. It reads the whole history:
-- tagged full_history (the CDC micro-batch leaves it to the hourly build).
{{ config(tags=['full_history']) }}
with latest as (
    {{ shardflow.latest_version(ref('int_orders_owned'), ['order_id']) }}
),

expected as (
    select order_id, order_status, total_cents, refunded_cents, row_version as order_version
    from latest
    where not is_removed
),

actual as (
    select order_id, order_status, total_cents, refunded_cents, order_version
    from {{ ref('fact_orders') }}
)

select 'missing from fact_orders' as problem, * from (select * from expected except select * from actual) as m
union all
select 'unexpected in fact_orders' as problem, * from (select * from actual except select * from expected) as u
