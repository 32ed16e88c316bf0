{#-
  The consumed-loads ledger of the incremental models (docs/decisions/0018, 0020). An
  incremental model must merge every change loaded since its last build, whatever order
  the loads committed in and whatever _loaded_at they carry: a timestamp high-water is
  passed by a load that stamped an earlier time and committed later (Snowflake stamps
  METADATA$START_SCAN_TIME, before the commit). So each model remembers what it has
  merged, by identity, and merges what it has not. Two levels:

  - The intermediates (int_*_deduplicated) consume *loads*: the pre-hook claim_loads
    claims, in one statement, every file of raw._load_history for the model's table that
    the ledger does not hold (same file_key and data_sha256; a replaced file has a new
    sha). A load commits its rows and its history row in one transaction (decisions/0013),
    so a claimed file's rows are all visible from here on; a file that commits later is
    not claimed and waits for the next build. claim_ownership does the same for the
    ownership seed (its fingerprint): a changed seed makes the next build recompute
    every key. Each row the model writes carries merged_by, the invocation that wrote it.
  - The marts (fact_orders, fct_order_payments, audit_order_lineage) consume the
    intermediates' *builds*: claim_builds claims every build (invocation) that consumed
    something upstream and that the mart has not merged; the mart re-merges the keys
    those builds wrote (merged_by). They never read a load the intermediates have not
    merged, so a load that commits between the two cannot be consumed by the mart and
    missed by the intermediate.

  Then the post-hook consume_loads marks the model's claims consumed by this invocation.
  A build that fails between claim and consume leaves its claims unconsumed; the next
  build merges them again (every merge recomputes a key's row, so twice is harmless).
  A full refresh forgets the model's ledger and claims everything. One build per target
  at a time (the Airflow pool `shardflow_dbt` has one slot): two concurrent builds could
  consume each other's claims.

  Each model has its own ledger beside it (<model>__consumed_loads, so models building in
  parallel never create or write one table), one row per file version, ownership
  fingerprint or upstream build.
-#}
{% macro ledger_relation(relation=none) -%}
{%- set of = relation if relation is not none else this -%}
{{ return(of.incorporate(path={"identifier": of.identifier ~ "__consumed_loads"})) }}
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

{#- Claims the loads of `tables` the model has not merged (an intermediate). -#}
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

{#- The ownership seed as one fingerprint: every row, in one order. -#}
{% macro ownership_fingerprint() -%}
(select md5(coalesce({{ shardflow.sorted_list(
    "cast(shard_id as varchar) || ':' || cast(bucket_lo as varchar) || '-' || cast(bucket_hi as varchar)"
    ~ " || '@' || cast(epoch as varchar) || '[' || coalesce(cast(valid_from as varchar), '') || ','"
    ~ " || coalesce(cast(valid_to as varchar), '') || ')' || cast(pending as varchar)") }}, ''))
 from {{ ref('shard_ownership') }})
{%- endmacro %}

{#- The ledger holds one ownership row per model: the fingerprint merged last, or the one
    claimed and not yet consumed. A different seed replaces it, unconsumed (two hooks:
    one statement each). -#}
{% macro forget_other_ownership() %}
delete from {{ shardflow.ledger_relation() }}
where model_name = '{{ this.identifier }}' and file_key = 'seed:shard_ownership'
  and data_sha256 <> {{ shardflow.ownership_fingerprint() }}
{% endmacro %}

{% macro claim_ownership() %}
insert into {{ shardflow.ledger_relation() }} (model_name, file_key, data_sha256, claimed_by, claimed_at, consumed_by)
select '{{ this.identifier }}', 'seed:shard_ownership', {{ shardflow.ownership_fingerprint() }}, '{{ invocation_id }}', current_timestamp, null
where not exists (
    select 1 from {{ shardflow.ledger_relation() }}
    where model_name = '{{ this.identifier }}' and file_key = 'seed:shard_ownership'
)
{% endmacro %}

{#- True (at compile time) when the model must recompute every key: the ownership seed
    differs from the one its last build merged, or that build did not finish. The model
    compiles after the seed is built and before its own hooks run. -#}
{% macro ownership_changed() %}
{%- if not execute -%}{{ return(false) }}{%- endif -%}
{%- if load_relation(shardflow.ledger_relation()) is none -%}{{ return(true) }}{%- endif -%}
{%- set r = run_query("select count(*) from " ~ shardflow.ledger_relation() ~ " where model_name = '" ~ this.identifier
    ~ "' and file_key = 'seed:shard_ownership' and consumed_by is not null and data_sha256 = "
    ~ shardflow.ownership_fingerprint()) -%}
{{ return(r.columns[0].values()[0] == 0) }}
{% endmacro %}

{#- Claims the builds of the upstream `models` (relations) that consumed something and
    that this model has not merged (a mart). -#}
{% macro claim_builds(models) %}
insert into {{ shardflow.ledger_relation() }} (model_name, file_key, data_sha256, claimed_by, claimed_at, consumed_by)
select distinct '{{ this.identifier }}', 'build:' || u.model_name, u.consumed_by, '{{ invocation_id }}', current_timestamp, cast(null as varchar)
from (
    {%- for m in models %}
    select model_name, consumed_by from {{ shardflow.ledger_relation(m) }}{% if not loop.last %} union all{% endif %}
    {%- endfor %}
) as u
where u.consumed_by is not null
  and not exists (
    select 1 from {{ shardflow.ledger_relation() }} as l
    where l.model_name = '{{ this.identifier }}'
      and l.file_key = 'build:' || u.model_name
      and l.data_sha256 = u.consumed_by
  )
{% endmacro %}

{#- The file keys an intermediate merges in this build: claimed and not yet consumed. -#}
{% macro loads_to_merge() %}
select distinct file_key
from {{ shardflow.ledger_relation() }}
where model_name = '{{ this.identifier }}' and consumed_by is null
{% endmacro %}

{#- The upstream builds of `model` (a relation) a mart merges in this build. -#}
{% macro builds_to_merge(model) %}
select data_sha256
from {{ shardflow.ledger_relation() }}
where model_name = '{{ this.identifier }}' and consumed_by is null
  and file_key = 'build:{{ model.identifier }}'
{% endmacro %}

{#- The keys of `key_columns` an upstream `model` wrote in the builds this mart merges. -#}
{% macro keys_to_merge(model, key_columns) %}
select {{ key_columns | join(', ') }} from {{ model }}
where merged_by in ({{ shardflow.builds_to_merge(model) }})
{% endmacro %}

{% macro consume_loads() %}
update {{ shardflow.ledger_relation() }}
set consumed_by = '{{ invocation_id }}'
where model_name = '{{ this.identifier }}' and consumed_by is null
{% endmacro %}
