{#- Statistics helpers, portable SQL (ln, sqrt and arithmetic only). -#}

{#- The standard normal quantile Phi^-1(p) for 0 < p < 1: Acklam's rational approximation
    (relative error below 1.2e-9), in three regions. Used where the quantile depends on the data,
    e.g. a Bonferroni z = Phi^-1(1 - alpha / (2k)) for a family of k intervals. `p` may be any
    numeric expression; it is evaluated several times, so keep it cheap. -#}
{% macro normal_quantile(p) -%}
    {%- set a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716, 2.506628277459239] -%}
    {%- set b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572] -%}
    {%- set c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783] -%}
    {%- set d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416] -%}
    {%- set pp = "cast(" ~ p ~ " as " ~ liucun.type_double() ~ ")" -%}
    {%- set q_lo = "sqrt(-2 * ln(" ~ pp ~ "))" -%}
    {%- set q_hi = "sqrt(-2 * ln(1 - " ~ pp ~ "))" -%}
    {%- set tail_num %}((((({{ c[0] }} * Q + {{ c[1] }}) * Q + {{ c[2] }}) * Q + {{ c[3] }}) * Q + {{ c[4] }}) * Q + {{ c[5] }}){% endset -%}
    {%- set tail_den %}(((({{ d[0] }} * Q + {{ d[1] }}) * Q + {{ d[2] }}) * Q + {{ d[3] }}) * Q + 1){% endset -%}
    {%- set rr = "((" ~ pp ~ " - 0.5) * (" ~ pp ~ " - 0.5))" -%}
    case
        when {{ pp }} <= 0 or {{ pp }} >= 1 then null
        when {{ pp }} < 0.02425 then
            {{ tail_num | replace('Q', q_lo) }} / {{ tail_den | replace('Q', q_lo) }}
        when {{ pp }} > 0.97575 then
            -{{ tail_num | replace('Q', q_hi) }} / {{ tail_den | replace('Q', q_hi) }}
        else
            ((((({{ a[0] }} * {{ rr }} + {{ a[1] }}) * {{ rr }} + {{ a[2] }}) * {{ rr }} + {{ a[3] }}) * {{ rr }} + {{ a[4] }}) * {{ rr }} + {{ a[5] }}) * ({{ pp }} - 0.5)
            / ((((({{ b[0] }} * {{ rr }} + {{ b[1] }}) * {{ rr }} + {{ b[2] }}) * {{ rr }} + {{ b[3] }}) * {{ rr }} + {{ b[4] }}) * {{ rr }} + 1)
    end
{%- endmacro %}

{#- Sample standard error of a mean from count n, sum s and sum of squares ss (null when n < 2). -#}
{% macro se_of_mean(n, s, ss) -%}
    case when {{ n }} > 1 then sqrt(
        greatest(cast({{ ss }} as {{ liucun.type_double() }})
                 - cast({{ s }} as {{ liucun.type_double() }}) * cast({{ s }} as {{ liucun.type_double() }}) / {{ n }}, 0)
        / ({{ n }} - 1) / {{ n }}) end
{%- endmacro %}
