{#- Generic test: no value of the column appears in `field` of the relation `to` (an anti-relationship). -#}
{% test not_in_relation(model, column_name, to, field) %}
select child.{{ column_name }}
from {{ model }} as child
inner join {{ to }} as other
    on child.{{ column_name }} = other.{{ field }}
{% endtest %}
