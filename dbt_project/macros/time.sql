{#- Timestamps are stored as naive UTC (`*_at`). These macros give business-local time and dates. -#}

{% macro to_business_time(utc_ts) -%}
    {{ return(adapter.dispatch('to_business_time', 'liucun')(utc_ts)) }}
{%- endmacro %}

{% macro default__to_business_time(utc_ts) -%}
    (({{ utc_ts }}) at time zone 'UTC') at time zone '{{ var("business_timezone") }}'
{%- endmacro %}

{% macro duckdb__to_business_time(utc_ts) -%}
    timezone('{{ var("business_timezone") }}', timezone('UTC', {{ utc_ts }}))
{%- endmacro %}

{% macro spark__to_business_time(utc_ts) -%}
    from_utc_timestamp({{ utc_ts }}, '{{ var("business_timezone") }}')
{%- endmacro %}

{% macro to_business_date(utc_ts) -%}
    cast({{ liucun.to_business_time(utc_ts) }} as date)
{%- endmacro %}

{#- The stored (naive UTC) timestamp at which a business-local date begins. -#}
{% macro business_day_start(date_expr) -%}
    {{ return(adapter.dispatch('business_day_start', 'liucun')(date_expr)) }}
{%- endmacro %}

{% macro default__business_day_start(date_expr) -%}
    ((cast({{ date_expr }} as timestamp)) at time zone '{{ var("business_timezone") }}') at time zone 'UTC'
{%- endmacro %}

{% macro duckdb__business_day_start(date_expr) -%}
    timezone('UTC', timezone('{{ var("business_timezone") }}', cast({{ date_expr }} as timestamp)))
{%- endmacro %}

{% macro spark__business_day_start(date_expr) -%}
    to_utc_timestamp(cast({{ date_expr }} as timestamp), '{{ var("business_timezone") }}')
{%- endmacro %}

{#- A stored UTC timestamp's business date is on or after `day` / from first_date to last_date
    (inclusive), converting as few rows as possible through the time zone: a row more than a day
    from a bound's start (no offset or daylight-saving shift is a day) is decided by comparing the
    stored timestamp itself, which the database can also answer from each block's min/max; only the
    rows within a day of a bound take the exact business-date test. -#}
{% macro business_date_at_least(utc_ts, day) -%}
    case
        when {{ utc_ts }} >= {{ dbt.dateadd('day', 1, liucun.business_day_start(day)) }} then true
        when {{ utc_ts }} < {{ dbt.dateadd('day', -1, liucun.business_day_start(day)) }} then false
        else {{ liucun.to_business_date(utc_ts) }} >= {{ day }}
    end
{%- endmacro %}

{% macro business_date_between(utc_ts, first_date, last_date) -%}
    {{ utc_ts }} >= {{ dbt.dateadd('day', -1, liucun.business_day_start(first_date)) }}
    and {{ utc_ts }} < {{ dbt.dateadd('day', 2, liucun.business_day_start(last_date)) }}
    and (
        ({{ utc_ts }} >= {{ dbt.dateadd('day', 1, liucun.business_day_start(first_date)) }}
            and {{ utc_ts }} < {{ liucun.business_day_start(last_date) }})
        or {{ liucun.to_business_date(utc_ts) }} between {{ first_date }} and {{ last_date }}
    )
{%- endmacro %}

{#- The as-of date of the run: var('as_of_date'), else the environment variable LIUCUN_AS_OF_DATE
    (what `liucun run` sets), else today. The environment variable is read only when models run,
    never while dbt parses: a new date every day then keeps dbt's partial parse valid (a changed
    --vars value makes dbt parse the whole project again). -#}
{% macro as_of_date() -%}
    {%- set as_of = var('as_of_date', none) or (env_var('LIUCUN_AS_OF_DATE', '') if execute else none) -%}
    {%- if as_of -%}cast('{{ as_of }}' as date){%- else -%}current_date{%- endif -%}
{%- endmacro %}

{#- Safe ratio: null when the denominator is 0. -#}
{% macro ratio(numerator, denominator) -%}
    cast({{ numerator }} as {{ liucun.type_double() }}) / nullif({{ denominator }}, 0)
{%- endmacro %}
