-- fact_orders is incremental; this recomputes it from scratch (latest owned versions,
-- business deletes removed) and returns every order on one side only or with different
-- values. Empty means the incremental merges and deletes converged to the full answer.
with expected as (
    select order_id, order_status, total_cents, refunded_cents, row_version as order_version
    from {{ ref('int_orders_deduplicated') }}
    where not is_removed
),

actual as (
    select order_id, order_status, total_cents, refunded_cents, order_version
    from {{ ref('fact_orders') }}
)

select 'missing from fact_orders' as problem, * from (select * from expected except select * from actual) as m
union all
select 'unexpected in fact_orders' as problem, * from (select * from actual except select * from expected) as u
