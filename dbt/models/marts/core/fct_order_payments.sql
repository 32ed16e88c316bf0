-- One row per payment (charge or refund) across every shard, latest owned version,
-- business deletes removed. Card references are the deterministic tokens, so the same
-- card joins across shards, batch and CDC; no card value is here.
select
    p.payment_id,
    p.order_id,
    p.customer_id,
    p.payment_kind,
    p.payment_status,
    p.amount_cents,
    case when p.payment_kind = 'refund' then -p.amount_cents else p.amount_cents end as signed_amount_cents,
    p.currency,
    p.card_number_token,
    p.card_holder_token,
    p.card_last4,
    {{ shardflow.utc_day('p.created_at') }} as payment_date,
    p.created_at,
    p.updated_at,
    p.row_version as payment_version
from {{ ref('int_payments_deduplicated') }} as p
where not p.is_removed
