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
    latest owned version, written by an upstream build this mart merges, is a business
    delete (or no owned version is left). -#}
{% macro delete_removed_keys(target_relation, latest_relation, key_column) %}
delete from {{ target_relation }}
where {{ key_column }} in (
    select {{ key_column }} from {{ latest_relation }}
    where is_removed and merged_by in ({{ shardflow.builds_to_merge(latest_relation) }})
)
{% endmacro %}

{#-
  An intermediate's rows, merged incrementally (docs/decisions/0020): the latest owned
  version of every key with a change in the loads this build claimed (macros/ledger.sql),
  by the same order as latest_version, read from the new rows and the key's current row
  only. The order is total, so the latest of (current winner, new rows) is the latest of
  the whole history, as long as no row left the history. Two ways one can, each recomputed
  from the key's whole owned history:
    - a file loaded again with other rows (a backfill): the keys whose current winner
      came from a file of this build are recomputed;
    - the ownership seed changed (ownership_changed): every key is recomputed.
  A recomputed key with no owned version left stays as a removed row (is_removed,
  version_rank 0), so the marts downstream see it go; when a new row of it comes, it is
  recomputed from its history too. Every row written carries merged_by, this invocation.

  staged: the staging relation; key_columns: the global key.
-#}
{% macro latest_version_merge(staged, key_columns) %}
{%- set on_key = [] -%}
{%- for k in key_columns %}{% do on_key.append("x." ~ k ~ " = y." ~ k) %}{% endfor -%}
{%- set on_key = on_key | join(" and ") -%}
{%- if not is_incremental() %}
with owned as (
    {{ shardflow.owned_changes(staged) }}
),

latest as (
    {{ shardflow.latest_version('owned', key_columns) }}
)

select latest.*, '{{ invocation_id }}' as merged_by from latest
{%- else %}
{%- set cols = [] -%}
{%- for c in adapter.get_columns_in_relation(this) if c.name | lower not in ['version_rank', 'is_removed', 'merged_by'] -%}
{%- do cols.append(c.name) -%}
{%- endfor -%}
{%- set col_list = cols | join(', ') -%}
{%- set reseed = shardflow.ownership_changed() %}
with
{%- if reseed %}
-- the ownership seed changed: every key, from its whole owned history
candidates as (
    select {{ col_list }} from ({{ shardflow.owned_changes(staged) }}) as owned
),

recomputed_keys as (
    select {{ key_columns | join(', ') }} from {{ this }}
),
{%- else %}
merging as (
    {{ shardflow.loads_to_merge() }}
),

new_rows as (
    {{ shardflow.owned_changes('(select * from ' ~ staged ~ ' where file_key in (select file_key from merging))') }}
),

-- from their whole history: keys whose current winner came from a file loaded again,
-- and removed keys with no owned version left (version_rank 0) that have a new row (the
-- row they keep is not in the history any more, so it must not compete)
recomputed_keys as (
    select {{ key_columns | join(', ') }} from {{ this }} as x
    where x.file_key in (select file_key from merging)
       or (x.version_rank = 0 and exists (select 1 from new_rows as y where {{ on_key }}))
),

recomputed as (
    {{ shardflow.owned_changes('(select * from ' ~ staged ~ ' as x where exists (select 1 from recomputed_keys as y where ' ~ on_key ~ '))') }}
),

-- the current winners of the other keys with a new row
kept as (
    select {{ col_list }} from {{ this }} as x
    where exists (select 1 from new_rows as y where {{ on_key }})
      and not exists (select 1 from recomputed_keys as y where {{ on_key }})
),

candidates as (
    select {{ col_list }} from new_rows
    union
    select {{ col_list }} from recomputed
    union
    select {{ col_list }} from kept
),
{%- endif %}

latest as (
    {{ shardflow.latest_version('candidates', key_columns) }}
),

-- recomputed keys with no owned version left: removed, marked version_rank 0
gone as (
    {%- set prefixed = [] -%}{%- for c in cols %}{% do prefixed.append("x." ~ c) %}{% endfor %}
    select {{ prefixed | join(', ') }}, cast(0 as bigint) as version_rank, true as is_removed
    from {{ this }} as x
    where exists (select 1 from recomputed_keys as y where {{ on_key }})
      and not exists (select 1 from candidates as y where {{ on_key }})
)

select latest.*, '{{ invocation_id }}' as merged_by from latest
union all
select gone.*, '{{ invocation_id }}' as merged_by from gone
{%- endif %}
{% endmacro %}
