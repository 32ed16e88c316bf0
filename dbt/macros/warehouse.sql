{#-
  Warehouse differences, behind adapter.dispatch so models are written once.
  Each macro has a default (ANSI / DuckDB) and a Snowflake implementation.
-#}

{# The type every timestamp is cast to: an instant, stored in UTC. #}
{% macro type_instant() %}{{ return(adapter.dispatch('type_instant', 'shardflow')()) }}{% endmacro %}
{% macro default__type_instant() %}timestamp with time zone{% endmacro %}
{% macro snowflake__type_instant() %}timestamp_tz{% endmacro %}

{# The UTC calendar day of an instant (finance business days are UTC days). #}
{% macro utc_day(expr) %}{{ return(adapter.dispatch('utc_day', 'shardflow')(expr)) }}{% endmacro %}
{% macro default__utc_day(expr) %}cast(timezone('UTC', {{ expr }}) as date){% endmacro %}
{% macro snowflake__utc_day(expr) %}to_date(convert_timezone('UTC', {{ expr }})){% endmacro %}

{# A big exact integer for sums of row checksums (15 hex digits per row). #}
{% macro type_checksum() %}{{ return(adapter.dispatch('type_checksum', 'shardflow')()) }}{% endmacro %}
{% macro default__type_checksum() %}decimal(38, 0){% endmacro %}
{% macro snowflake__type_checksum() %}number(38, 0){% endmacro %}

{# Distinct values of expr joined with ',' in sorted order, per group. #}
{% macro sorted_list(expr) %}{{ return(adapter.dispatch('sorted_list', 'shardflow')(expr)) }}{% endmacro %}
{% macro default__sorted_list(expr) %}string_agg(distinct {{ expr }}, ',' order by {{ expr }}){% endmacro %}
{% macro snowflake__sorted_list(expr) %}listagg(distinct {{ expr }}, ',') within group (order by {{ expr }}){% endmacro %}

{# A literal instant. #}
{% macro instant_literal(iso) %}{{ return(adapter.dispatch('instant_literal', 'shardflow')(iso)) }}{% endmacro %}
{% macro default__instant_literal(iso) %}cast('{{ iso }}' as timestamp with time zone){% endmacro %}
{% macro snowflake__instant_literal(iso) %}to_timestamp_tz('{{ iso }}'){% endmacro %}

{#- Schemas are named as configured (staging, intermediate, analytics, finance, audit,
    registry), not prefixed with the target schema: the warehouse holds one deployment
    per database (local file / Snowflake database). With --vars '{raw_schema: S}' (a
    restore, docs/retention.md) the staging views go to S, over it, so raw's stay. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}
    {%- elif custom_schema_name | trim == 'staging' and var('raw_schema', 'raw') != 'raw' -%}{{ var('raw_schema') }}
    {%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

{#- raw._load_history.rows (contracts §6). ROWS is reserved in Snowflake (all ANSI
    keywords are), so there the column can exist only quoted, as "ROWS". -#}
{% macro history_rows(alias=none) %}{{ return(adapter.dispatch('history_rows', 'shardflow')(alias)) }}{% endmacro %}
{% macro default__history_rows(alias) %}{{ alias ~ '.' if alias }}rows{% endmacro %}
{% macro snowflake__history_rows(alias) %}{{ alias ~ '.' if alias }}"ROWS"{% endmacro %}
