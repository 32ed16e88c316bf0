-- The latest owned version of each orders key (contracts §7), with is_removed for business
-- deletes. Reads staging directly (not int_orders_owned) so its unit tests cover the
-- ownership filter and the dedup together.
with owned as (
    {{ shardflow.owned_changes(ref('stg_shard__orders')) }}
)

{{ shardflow.latest_version('owned', ['order_id']) }}
