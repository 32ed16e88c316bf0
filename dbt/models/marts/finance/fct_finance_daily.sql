-- Daily finance numbers as published: each business day from the latest finance run that
-- covered it (run_seq; a run covers the days between its day_from and day_to, all days
-- when unbounded), with the run's id and code version beside the numbers so every figure
-- traces to its manifest (dim_finance_runs, fct_finance_run_inputs). A day whose latest
-- run found nothing any more (its orders deleted since) shows nothing, not older numbers.
-- Replays (runs with replay_of) re-publish nothing: they exist to prove a past run.
with runs as (
    select run_id, run_seq, code_version, registry_epoch, day_from, day_to
    from {{ ref('dim_finance_runs') }}
    where replay_of is null
),

days as (
    select distinct business_day from {{ ref('fct_finance_daily_versions') }}
),

latest as (
    select d.business_day, max(r.run_seq) as run_seq
    from days as d
    inner join runs as r
        on (r.day_from is null or d.business_day >= r.day_from)
        and (r.day_to is null or d.business_day <= r.day_to)
    group by d.business_day
)

select
    v.business_day,
    v.currency,
    v.region,
    v.gross_cents,
    v.refunds_cents,
    v.net_cents,
    v.charges,
    v.refunds,
    v.run_id,
    r.run_seq,
    r.code_version,
    r.registry_epoch
from latest as l
inner join runs as r on r.run_seq = l.run_seq
inner join {{ ref('fct_finance_daily_versions') }} as v
    on v.run_id = r.run_id and v.business_day = l.business_day
