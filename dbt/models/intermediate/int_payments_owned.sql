-- payments changes that count: those from the shard that owned the bucket at the change's
-- instant (macros/ownership.sql). Copies made during a move and cleanup deletes after it
-- drop out here. Every version stays; int_payments_deduplicated keeps the latest.
{{ shardflow.owned_changes(ref('stg_shard__payments')) }}
