{#- The lineage columns every raw table carries (contracts §5, §6), typed and renamed,
    plus changed_at: the instant the ownership filter judges a change by. -#}
{% macro staging_lineage_columns() %}
    cast(_shard as varchar) as shard_id,
    cast(_source as varchar) as source_kind,
    cast(_op as varchar) as change_op,
    cast(_registry_epoch as integer) as registry_epoch,
    cast(_window_start as {{ shardflow.type_instant() }}) as window_start,
    cast(_window_end as {{ shardflow.type_instant() }}) as window_end,
    cast(_commit_ts as {{ shardflow.type_instant() }}) as commit_ts,
    cast(_lsn as bigint) as lsn,
    cast(_txid as bigint) as txid,
    cast(_file as varchar) as file_key,
    cast(_loaded_at as {{ shardflow.type_instant() }}) as loaded_at,
    cast(case when _op = 'd' then _commit_ts else updated_at end as {{ shardflow.type_instant() }}) as changed_at
{% endmacro %}
