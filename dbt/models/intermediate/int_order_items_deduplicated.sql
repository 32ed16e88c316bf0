-- The latest owned version of each order_items key (contracts §7), with is_removed for business
-- deletes. Reads staging directly (not int_order_items_owned) so its unit tests cover the
-- ownership filter and the dedup together.
with owned as (
    {{ shardflow.owned_changes(ref('stg_shard__order_items')) }}
)

{{ shardflow.latest_version('owned', ['order_id', 'line_no']) }}
