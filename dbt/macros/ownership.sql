{#-
  The ownership filter (docs/contracts.md §3). A change counts only from the shard that
  owned the row's bucket at the change's instant: updated_at for c/u/r rows, the commit
  time for a CDC delete ('d'); staging exposes that instant as changed_at. The history
  comes from the seed shard_ownership (shardctl gen-seeds): one row per (shard, bucket
  range, [valid_from, valid_to)), NULL bounds open, each bound an instant of that shard's
  own clock: a move's fence markers (decisions/0017). A copy made on the new shard during
  a move is stamped before the new shard's marker, and the cleanup delete on the old shard
  commits after the old shard's marker: neither shard owned the bucket then, so both drop
  out.

  relation: a relation or CTE name with shard_id, bucket and changed_at.
-#}
{% macro owned_changes(relation) %}
select
    c.*,
    o.epoch as owner_epoch
from {{ relation }} as c
inner join {{ ref('shard_ownership') }} as o
    on  o.shard_id = c.shard_id
    and c.bucket between o.bucket_lo and o.bucket_hi
    and (o.valid_from is null or c.changed_at >= o.valid_from)
    and (o.valid_to is null or c.changed_at < o.valid_to)
{% endmacro %}

{#-
  Latest version per global key (docs/contracts.md §7), among owned rows. The order is
  total, so the same input always gives the same winner, whatever the engine:
  row_version desc, a delete before a non-delete of the same version, later commit,
  later LSN (NULL last), CDC before batch, then shard and file as the last resort.
  Adds is_removed: the winner is a soft delete (deleted = true) or a delete ('d') from
  the owner, i.e. a business delete; such keys are removed from the marts.
-#}
{% macro latest_version(relation, key_columns) %}
select
    ranked.*,
    (coalesce(ranked.deleted, false) or ranked.change_op = 'd') as is_removed
from (
    select
        r.*,
        row_number() over (
            partition by {{ key_columns | join(', ') }}
            order by {{ shardflow.latest_version_order() }}
        ) as version_rank
    from {{ relation }} as r
) as ranked
where ranked.version_rank = 1
{% endmacro %}

{% macro latest_version_order() -%}
row_version desc nulls last,
            case when change_op = 'd' then 1 else 0 end desc,
            commit_ts desc nulls last,
            lsn desc nulls last,
            case when source_kind = 'cdc' then 0 else 1 end,
            shard_id,
            file_key
{%- endmacro %}

{#- Post-hook of the incremental marts: merge only upserts, so remove the keys whose
    latest owned version is a business delete. -#}
{% macro delete_removed_keys(target_relation, latest_relation, key_column) %}
delete from {{ target_relation }}
where {{ key_column }} in (
    select {{ key_column }} from {{ latest_relation }} where is_removed
)
{% endmacro %}
