{#-
  dbt run-operation verify_finance_run --args '{run_id: RUN}'

  Proves a published finance run is reproducible. Two checks, both must pass:
   1. inputs: for each (shard, table) the run pinned, raw._load_history still holds the
      same files, rows and checksum sum up to the run's high-water mark (a re-extracted
      window replaced after the run would show here, naming shard and table);
   2. numbers: the run's daily numbers recomputed now from those pinned inputs equal the
      stored ones exactly (rows in either and not in the other are counted).
  Logs one line per check and exits non-zero (dbt exit 1) on any difference, so
  `shardctl finance verify` can wrap it. RUN defaults to the latest run. With
  --vars '{raw_schema: S}' it verifies from a restore schema (shardctl retention restore
  --run RUN --schema S) instead of raw: a run whose inputs were purged past the hot period.
-#}
{% macro verify_finance_run(run_id=none) %}
  {%- set manifest = ref('dim_finance_runs') -%}
  {%- if run_id is none -%}
    {%- set r = run_query("select run_id from " ~ manifest ~ " order by run_seq desc limit 1") -%}
    {%- if r.rows | length == 0 -%}{{ exceptions.raise_compiler_error("verify finance run: no finance run recorded") }}{%- endif -%}
    {%- set run_id = r.rows[0][0] -%}
  {%- endif -%}
  {%- set m = run_query("select run_seq, code_version, registry_epoch, cast(day_from as varchar), cast(day_to as varchar) from " ~ manifest ~ " where run_id = '" ~ run_id ~ "'") -%}
  {%- if m.rows | length != 1 -%}{{ exceptions.raise_compiler_error("verify finance run " ~ run_id ~ ": not in dim_finance_runs") }}{%- endif -%}
  {%- set seq, code_version, epoch, day_from, day_to = m.rows[0][0], m.rows[0][1], m.rows[0][2], m.rows[0][3], m.rows[0][4] -%}

  {%- set inputs_sql -%}
    with pinned as (
        select * from {{ ref('fct_finance_run_inputs') }} where run_id = '{{ run_id }}'
    ),
    now_loaded as (
        select p.shard_id, p.table_name,
               count(h.file_key) as files,
               coalesce(sum({{ shardflow.history_rows("h") }}), 0) as input_rows,
               coalesce(sum(cast(h.checksum as {{ shardflow.type_checksum() }})), 0) as input_checksum
        from pinned as p
        left join {{ source('shard', '_load_history') }} as h
            on h.shard = p.shard_id and h.table_name = p.table_name and h.loaded_at <= p.hwm_loaded_at
        group by p.shard_id, p.table_name
    )
    select p.shard_id, p.table_name, p.files, n.files, p.input_rows, n.input_rows
    from pinned as p
    inner join now_loaded as n on n.shard_id = p.shard_id and n.table_name = p.table_name
    where p.files <> n.files or p.input_rows <> n.input_rows or p.input_checksum <> n.input_checksum
    order by 1, 2
  {%- endset -%}
  {%- set changed = run_query(inputs_sql) -%}
  {%- set pins = run_query("select count(*) from " ~ ref('fct_finance_run_inputs') ~ " where run_id = '" ~ run_id ~ "'").rows[0][0] -%}

  {%- set numbers_sql -%}
    with stored as (
        select business_day, currency, region, gross_cents, refunds_cents, net_cents, charges, refunds
        from {{ ref('fct_finance_daily_versions') }} where run_id = '{{ run_id }}'
    ),
    recomputed as (
        {{ shardflow.finance_daily_sql("'" ~ run_id ~ "'", day_from, day_to) }}
    ),
    only_stored as (select * from stored except select * from recomputed),
    only_recomputed as (select * from recomputed except select * from stored)
    select
        (select count(*) from stored),
        (select count(*) from only_stored),
        (select count(*) from only_recomputed),
        (select coalesce(sum(net_cents), 0) from stored)
  {%- endset -%}
  {%- set n = run_query(numbers_sql).rows[0] -%}

  {%- set where = "run " ~ run_id ~ " (seq " ~ seq ~ ", code " ~ code_version ~ ", epoch " ~ epoch ~ ", days " ~ (day_from or 'all') ~ ".." ~ (day_to or 'all') ~ ")" -%}
  {%- set problems = [] -%}
  {%- for c in changed.rows -%}
    {%- do problems.append("input changed since the run: shard " ~ c[0] ~ " table " ~ c[1] ~ ": files " ~ c[2] ~ " -> " ~ c[3] ~ ", rows " ~ c[4] ~ " -> " ~ c[5]) -%}
  {%- endfor -%}
  {%- if n[1] > 0 or n[2] > 0 -%}
    {%- set why = "" -%}
    {%- set purge_log = adapter.get_relation(database=source('shard', '_load_history').database, schema=source('shard', '_load_history').schema, identifier='_purge_log') -%}
    {%- if purge_log is not none -%}
      {%- set purged = run_query("select count(*) from " ~ purge_log ~ " as g"
            ~ " inner join " ~ source('shard', '_load_history') ~ " as h on h.file_key = g.file_key and h.data_sha256 = g.data_sha256"
            ~ " inner join " ~ ref('fct_finance_run_inputs') ~ " as p on p.shard_id = h.shard and p.table_name = h.table_name and h.loaded_at <= p.hwm_loaded_at"
            ~ " where p.run_id = '" ~ run_id ~ "'").rows[0][0] -%}
      {%- if purged > 0 -%}
        {%- set why = " (" ~ purged ~ " of its pinned input files were purged from the raw tables past the hot period: restore them with `shardctl retention restore --run " ~ run_id ~ " --schema S` and verify with `--restore S`, docs/retention.md)" -%}
      {%- endif -%}
    {%- endif -%}
    {%- do problems.append("numbers differ: " ~ n[1] ~ " stored row(s) not reproduced, " ~ n[2] ~ " recomputed row(s) not stored" ~ why) -%}
  {%- endif -%}
  {%- if problems -%}
    {{ exceptions.raise_compiler_error("verify finance " ~ where ~ ": NOT reproducible: " ~ (problems | join('; '))) }}
  {%- endif -%}
  {%- set inputs_note = (pins ~ " input pins unchanged") if pins > 0 else "no inputs (nothing was loaded when it ran)" -%}
  {{ log("verify finance " ~ where ~ ": reproducible: " ~ inputs_note ~ ", " ~ n[0] ~ " daily rows identical, net_cents total " ~ n[3], info=True) }}
{% endmacro %}
