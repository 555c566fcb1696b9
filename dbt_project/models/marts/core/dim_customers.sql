with crm as (

    select * from {{ ref('stg_crm__customers') }}

),

orders as (

    select * from {{ ref('int_orders_attributed') }}
    where customer_id is not null

),

crm_customers as (

    select
        {{ dbt.hash(dbt.concat(["'crm:'", "crm_id"])) }} as customer_id,
        'crm' as customer_key_type,
        crm_id,
        registration_channel as acquisition_channel,
        region,
        city_tier,
        registered_at
    from crm

),

order_customers as (

    -- customers known only from orders (e.g. a WeChat unionid with no CRM record)
    select distinct
        customer_id,
        case when customer_key like 'wx:%' then 'wechat' else 'crm' end as customer_key_type
    from orders

),

first_orders as (

    select customer_id, channel as first_order_channel
    from (
        select
            customer_id,
            channel,
            row_number() over (partition by customer_id order by ordered_at, order_id) as rn
        from orders
    ) as ranked
    where rn = 1

),

order_stats as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as orders,
        sum(net_amount) as net_revenue
    from orders
    group by customer_id

),

all_customers as (

    select customer_id, customer_key_type from crm_customers
    union
    select customer_id, customer_key_type from order_customers

),

final as (

    select
        all_customers.customer_id,
        all_customers.customer_key_type,
        crm_customers.crm_id,
        crm_customers.acquisition_channel,
        crm_customers.region,
        crm_customers.city_tier,
        crm_customers.registered_at,
        first_orders.first_order_channel,
        order_stats.first_order_at,
        order_stats.last_order_at,
        coalesce(order_stats.orders, 0) as orders,
        coalesce(order_stats.net_revenue, 0) as net_revenue
    from all_customers
    left join crm_customers on all_customers.customer_id = crm_customers.customer_id
    left join first_orders on all_customers.customer_id = first_orders.customer_id
    left join order_stats on all_customers.customer_id = order_stats.customer_id

)

select * from final
