-- One row per raw order line row (every version, every shard, batch and CDC), typed and renamed.
select
    cast(order_id as varchar) as order_id,
    cast(line_no as integer) as line_no,
    cast(customer_id as bigint) as customer_id,
    cast(bucket as integer) as bucket,
    cast(sku as varchar) as sku,
    cast(quantity as integer) as quantity,
    cast(unit_price_cents as bigint) as unit_price_cents,
    cast(deleted as boolean) as deleted,
    cast(created_at as {{ shardflow.type_instant() }}) as created_at,
    cast(updated_at as {{ shardflow.type_instant() }}) as updated_at,
    cast(row_version as bigint) as row_version,
    {{ shardflow.staging_lineage_columns() }}
from {{ source('shard', 'order_items') }}
