-- One row per raw order row (every version, every shard, batch and CDC), typed and renamed.
select
    cast(order_id as varchar) as order_id,
    cast(customer_id as bigint) as customer_id,
    cast(bucket as integer) as bucket,
    cast(status as varchar) as order_status,
    cast(currency as varchar) as currency,
    cast(region as varchar) as region,
    cast(total_cents as bigint) as total_cents,
    cast(refunded_cents as bigint) as refunded_cents,
    cast(deleted as boolean) as deleted,
    cast(created_at as {{ shardflow.type_instant() }}) as created_at,
    cast(updated_at as {{ shardflow.type_instant() }}) as updated_at,
    cast(row_version as bigint) as row_version,
    {{ shardflow.staging_lineage_columns() }}
from {{ source('shard', 'orders') }}
