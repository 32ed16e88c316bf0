{{
  config(
    materialized='incremental',
    unique_key='payment_id',
    incremental_strategy='merge',
    on_schema_change='fail',
    cluster_by=['payment_date'],
    pre_hook=[
      "{{ shardflow.ensure_ledger() }}",
      "{{ shardflow.forget_loads() }}",
      "{{ shardflow.claim_builds([ref('int_payments_deduplicated')]) }}"
    ],
    post_hook=[
      "{{ shardflow.delete_removed_keys(this, ref('int_payments_deduplicated'), 'payment_id') }}",
      "{{ shardflow.consume_loads() }}"
    ]
  )
}}
-- One row per payment (charge or refund) across every shard, latest owned version,
-- business deletes removed. Card references are the deterministic tokens, so the same
-- card joins across shards, batch and CDC; no card value is here. Incremental: re-merges
-- the payments int_payments_deduplicated wrote in builds it has not merged (macros/ledger.sql).
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
{%- if is_incremental() %}
  and p.payment_id in ({{ shardflow.keys_to_merge(ref('int_payments_deduplicated'), ['payment_id']) }})
{%- endif %}
