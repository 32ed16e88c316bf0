{#-
  The consumed-loads ledger of an incremental model (docs/decisions/0018). An incremental
  model must merge every file loaded since its last build, whatever order the loads
  committed in and whatever _loaded_at they carry: a timestamp high-water is passed by a
  load that stamped an earlier time and committed later (Snowflake stamps
  METADATA$START_SCAN_TIME, before the commit). So the model remembers which loads it has
  merged, by identity, and merges what it has not:

    1. pre-hook claim_loads: every file of raw._load_history for the model's tables that
       the ledger does not hold (same file_key and data_sha256) is claimed, in one
       statement. A load commits its rows and its history row in one transaction
       (decisions/0013), so a claimed file's rows are all visible from here on; a file
       that commits later is not claimed and waits for the next build.
    2. the model merges the keys of the rows of every claimed, not yet consumed file
       (loads_to_merge), recomputing each key from the whole owned history.
    3. post-hook consume_loads: those claims are marked consumed by this invocation.

  A build that fails between 1 and 3 leaves its claims unconsumed; the next build merges
  them again (a merge recomputes the key from scratch, so merging twice is harmless).
  A full refresh forgets the model's ledger and claims every file. One build per target
  at a time (the Airflow pool `shardflow_dbt` has one slot): two concurrent builds could consume
  each other's claims.

  The table lives beside the model (analytics.shardflow_consumed_loads), one row per
  (model, file version). Use:

    pre_hook=["{{ shardflow.ensure_ledger() }}", "{{ shardflow.forget_loads() }}",
              "{{ shardflow.claim_loads(['orders', 'order_items']) }}"],
    post_hook=["{{ shardflow.consume_loads() }}"]
-#}
{% macro ledger_relation() -%}
{{ return(this.incorporate(path={"identifier": "shardflow_consumed_loads"})) }}
{%- endmacro %}

{% macro ensure_ledger() %}
create table if not exists {{ shardflow.ledger_relation() }} (
    model_name  varchar not null,
    file_key    varchar not null,
    data_sha256 varchar not null,
    claimed_by  varchar not null,
    claimed_at  {{ shardflow.type_instant() }} not null,
    consumed_by varchar
)
{% endmacro %}

{#- A full refresh (or the first build) starts the model's ledger afresh; an incremental
    build renders nothing (dbt skips an empty hook). -#}
{% macro forget_loads() %}
{%- if not is_incremental() -%}
delete from {{ shardflow.ledger_relation() }} where model_name = '{{ this.identifier }}'
{%- endif -%}
{% endmacro %}

{% macro claim_loads(tables) %}
insert into {{ shardflow.ledger_relation() }} (model_name, file_key, data_sha256, claimed_by, claimed_at, consumed_by)
select '{{ this.identifier }}', h.file_key, h.data_sha256, '{{ invocation_id }}', current_timestamp, null
from {{ source('shard', '_load_history') }} as h
where h.table_name in ({% for t in tables %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
  and not exists (
    select 1 from {{ shardflow.ledger_relation() }} as l
    where l.model_name = '{{ this.identifier }}'
      and l.file_key = h.file_key
      and l.data_sha256 = h.data_sha256
  )
{% endmacro %}

{#- The file keys the model merges in this build: claimed and not yet consumed. -#}
{% macro loads_to_merge() %}
select distinct file_key
from {{ shardflow.ledger_relation() }}
where model_name = '{{ this.identifier }}' and consumed_by is null
{% endmacro %}

{% macro consume_loads() %}
update {{ shardflow.ledger_relation() }}
set consumed_by = '{{ invocation_id }}'
where model_name = '{{ this.identifier }}' and consumed_by is null
{% endmacro %}
