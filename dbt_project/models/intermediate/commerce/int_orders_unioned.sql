-- Orders from every source shape: systems that export orders, and systems that export order
-- lines (rolled up here: one order per order_id). A return/cancellation order (all lines returned,
-- e.g. Online Retail invoices starting with "C") has net_amount 0 and its value as refund_amount,
-- so it never counts as purchase activity.
-- A daily build adds the orders of the new loads (macros/incremental.sql: loads that replace rows,
-- or add lines to an order loaded before, make every model compute in full).
{{ liucun.absorbing_config(strategy='append') }}
with orders as (

    select * from {{ ref('stg_commerce__orders') }}
    {{- liucun.only_new_loads(liucun.new_loads() if liucun.absorbs_new_loads() else none) }}

),

lines as (

    select * from {{ ref('stg_commerce__order_lines') }}
    {{- liucun.only_new_loads(liucun.new_loads() if liucun.absorbs_new_loads() else none) }}

),

rolled_up as (

    select
        order_id,
        min(ordered_at) as ordered_at,
        coalesce(max(channel), 'unknown') as channel,
        cast(null as {{ dbt.type_string() }}) as store_id,
        max(crm_id) as crm_id,
        max(member_card) as member_card,
        max(phone_hash) as phone_hash,
        max(wechat_unionid) as wechat_unionid,
        sum(case when quantity > 0 then quantity else 0 end) as item_count,
        cast(sum(case when line_amount > 0 then line_amount else 0 end) as decimal(18, 2)) as gross_amount,
        cast(0 as decimal(18, 2)) as discount_amount,
        cast(sum(case when line_amount > 0 then line_amount else 0 end) as decimal(18, 2)) as net_amount,
        cast(sum(case when line_amount < 0 then -line_amount else 0 end) as decimal(18, 2)) as refund_amount,
        {{ dbt.bool_or('coalesce(is_return, false)') }} as is_returned,
        cast(null as {{ dbt.type_string() }}) as referral_code,
        cast(null as {{ dbt.type_string() }}) as coupon_code,
        cast(null as date) as promised_delivery_date,
        cast(null as {{ dbt.type_timestamp() }}) as delivered_at,
        max(source_name) as source_name,
        max(load_id) as load_id
    from lines
    group by order_id

),

final as (

    select * from orders
    union all
    select * from rolled_up

)

select * from final
