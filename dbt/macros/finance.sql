{#-
  Finance daily aggregates, pinned to a run's inputs (docs/architecture.md, invariant 8).

  A finance run reads only the raw rows loaded at or before its high-water marks, one per
  (shard, table), recorded in fct_finance_run_inputs. On those rows it applies the same
  ownership filter and latest-version rule as the marts, so the numbers are a function of
  (recorded inputs, ownership seed, code) alone: re-running a past run gives the same
  numbers whatever has been loaded since, and after splits and moves too (moves only add
  ownership intervals from their cutover on; rows already loaded keep their owner).

  Definitions (per UTC business day of the payment, currency, order region; business
  deletes excluded, as in the marts):
    gross_cents   charges not voided (authorized or captured)
    refunds_cents refund payments
    net_cents     gross_cents - refunds_cents

  run_id_sql: a SQL expression giving the run whose pins to use.
  day_from, day_to: ISO dates (inclusive) or none for no bound.
-#}
{% macro finance_daily_sql(run_id_sql, day_from=none, day_to=none) %}
with

pins as (
    select shard_id, table_name, hwm_loaded_at
    from {{ ref('fct_finance_run_inputs') }}
    where run_id = {{ run_id_sql }}
),

orders_in as (
    select s.*
    from {{ ref('stg_shard__orders') }} as s
    inner join pins as p
        on p.shard_id = s.shard_id and p.table_name = 'orders' and s.loaded_at <= p.hwm_loaded_at
),

payments_in as (
    select s.*
    from {{ ref('stg_shard__payments') }} as s
    inner join pins as p
        on p.shard_id = s.shard_id and p.table_name = 'payments' and s.loaded_at <= p.hwm_loaded_at
),

orders_owned as ({{ shardflow.owned_changes('orders_in') }}),
payments_owned as ({{ shardflow.owned_changes('payments_in') }}),
orders_latest as ({{ shardflow.latest_version('orders_owned', ['order_id']) }}),
payments_latest as ({{ shardflow.latest_version('payments_owned', ['payment_id']) }}),

money as (
    select
        {{ shardflow.utc_day('p.created_at') }} as business_day,
        p.currency,
        o.region,
        p.payment_kind,
        p.payment_status,
        p.amount_cents
    from payments_latest as p
    inner join orders_latest as o on o.order_id = p.order_id
    where not p.is_removed and not o.is_removed
)

select
    business_day,
    currency,
    region,
    cast(sum(case when payment_kind = 'charge' and payment_status <> 'voided' then amount_cents else 0 end) as bigint) as gross_cents,
    cast(sum(case when payment_kind = 'refund' then amount_cents else 0 end) as bigint) as refunds_cents,
    cast(sum(case when payment_kind = 'charge' and payment_status <> 'voided' then amount_cents
                  when payment_kind = 'refund' then -amount_cents else 0 end) as bigint) as net_cents,
    cast(sum(case when payment_kind = 'charge' and payment_status <> 'voided' then 1 else 0 end) as bigint) as charges,
    cast(sum(case when payment_kind = 'refund' then 1 else 0 end) as bigint) as refunds
from money
where 1 = 1
{%- if day_from %} and business_day >= cast('{{ day_from }}' as date){% endif %}
{%- if day_to %} and business_day <= cast('{{ day_to }}' as date){% endif %}
group by business_day, currency, region
{% endmacro %}

{# The id of the finance run this invocation publishes. #}
{% macro finance_run_id() -%}
{{ return(var('finance_run_id') or invocation_id) }}
{%- endmacro %}

{#- The current input high-water marks: per (shard, table), the newest load and the
    files, rows and checksum sum loaded up to it. -#}
{% macro finance_current_inputs() %}
select
    shard as shard_id,
    table_name,
    max(loaded_at) as hwm_loaded_at,
    count(*) as files,
    sum({{ shardflow.history_rows() }}) as input_rows,
    sum(cast(checksum as {{ shardflow.type_checksum() }})) as input_checksum
from {{ source('shard', '_load_history') }}
group by shard, table_name
{% endmacro %}
