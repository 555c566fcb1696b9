{#- Spark SQL: the dispatched pieces of dbt itself that the project's portable SQL needs there. -#}

{#- Model contracts declare portable type names (varchar, double precision); dbt checks a contract
    by casting nulls to them, so on Spark they are first named as Spark SQL names them. -#}
{% macro spark__get_empty_schema_sql(columns) %}
    {%- set spark_names = {'varchar': 'string', 'text': 'string', 'double precision': 'double'} -%}
    {%- set translated = {} -%}
    {%- for name in columns -%}
        {%- set col = dict(columns[name]) -%}
        {%- if col.get('data_type') -%}
            {%- do col.update({'data_type': spark_names.get(col['data_type'].strip().lower(), col['data_type'])}) -%}
        {%- endif -%}
        {%- do translated.update({name: col}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(translated)) }}
{% endmacro %}

{#- Seeds on Spark: dbt-spark's session connection puts bound values between quotes without
    escaping them, so a seed text with an apostrophe ("the brand's control") breaks the insert.
    The values are written as escaped literals instead. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                    {%- set value = row[loop.index0] -%}
                    cast({{ liucun.spark_literal(value) }} as {{ type }}){%- if not loop.last %}, {% endif -%}
                {%- endfor -%}){%- if not loop.last %},{% endif %}
            {% endfor -%}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}{%- do statements.append(sql) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{% endmacro %}

{% macro spark_literal(value) -%}
    {%- if value is none -%}null
    {%- elif value is sameas true or value is sameas false -%}{{ 'true' if value else 'false' }}
    {%- elif value is number -%}{{ value }}
    {%- else -%}'{{ value | string | replace('\\', '\\\\') | replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}
