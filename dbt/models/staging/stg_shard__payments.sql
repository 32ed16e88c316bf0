-- One row per raw payment row (every version, every shard, batch and CDC), typed and renamed.
-- Card data is already tokenized before landing: card_number and card_holder are keyed
-- HMAC tokens, card_last4 the last four digits; expiry and CVV never reach the warehouse.
select
    cast(payment_id as varchar) as payment_id,
    cast(order_id as varchar) as order_id,
    cast(customer_id as bigint) as customer_id,
    cast(bucket as integer) as bucket,
    cast(kind as varchar) as payment_kind,
    cast(status as varchar) as payment_status,
    cast(amount_cents as bigint) as amount_cents,
    cast(currency as varchar) as currency,
    cast(card_number as varchar) as card_number_token,
    cast(card_holder as varchar) as card_holder_token,
    cast(card_last4 as varchar) as card_last4,
    cast(deleted as boolean) as deleted,
    cast(created_at as {{ shardflow.type_instant() }}) as created_at,
    cast(updated_at as {{ shardflow.type_instant() }}) as updated_at,
    cast(row_version as bigint) as row_version,
    {{ shardflow.staging_lineage_columns() }}
from {{ source('shard', 'payments') }}
