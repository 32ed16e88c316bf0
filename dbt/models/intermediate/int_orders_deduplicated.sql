{{
  config(
    materialized='incremental',
    unique_key=['order_id'],
    incremental_strategy='merge',
    on_schema_change='fail',
    cluster_by=['order_id'],
    pre_hook=[
      "{{ shardflow.ensure_ledger() }}",
      "{{ shardflow.forget_loads() }}",
      "{{ shardflow.claim_loads(['orders']) }}",
      "{{ shardflow.forget_other_ownership() }}",
      "{{ shardflow.claim_ownership() }}"
    ],
    post_hook=["{{ shardflow.consume_loads() }}"]
  )
}}
-- The latest owned version of each orders key (contracts §7), with is_removed for business
-- deletes. Incremental: merges the keys with a change in a load it has not merged yet
-- (the consumed-loads ledger, macros/ledger.sql), from the new rows and the key's current
-- row; recomputes a key from its whole history when its winner's file was loaded again,
-- every key when the ownership seed changed (decisions/0020). Reads staging directly (not
-- int_orders_owned) so its unit tests cover the ownership filter and the dedup together.
{{ shardflow.latest_version_merge(ref('stg_shard__orders'), ['order_id']) }}
