{#-
  dbt run-operation fact_orders_summary

  One line for the demo and for operators: fact_orders' orders and amounts beside the raw
  rows they came from, e.g.
    fact_orders: 1234 orders, total_cents 5678900 | raw.orders: 5012 rows from 4 shards, 1288 distinct order_id
  Compare the first two figures with the shards themselves
  (select count(*), sum(total_cents) from orders where not deleted, summed over shards,
  once no move is in flight).
-#}
{% macro fact_orders_summary() %}
  {%- set f = run_query("select count(*), coalesce(sum(total_cents), 0) from " ~ ref('fact_orders')).rows[0] -%}
  {%- set r = run_query("select count(*), count(distinct _shard), count(distinct order_id) from " ~ source('shard', 'orders')).rows[0] -%}
  {{ log("fact_orders: " ~ f[0] ~ " orders, total_cents " ~ f[1] ~ " | raw.orders: " ~ r[0] ~ " rows from " ~ r[1] ~ " shards, " ~ r[2] ~ " distinct order_id", info=True) }}
{% endmacro %}
