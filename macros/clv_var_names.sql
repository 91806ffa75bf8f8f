{#-
    The names of clv's vars: the list of those it reads (as declared in dbt_project.yml), the
    check that stops a build on a var it does not read, and the closest-name lookup behind
    every "did you mean" (of vars, and of columns in clv_column_map).
-#}


{#- Every var clv reads, as declared under `vars:` in dbt_project.yml. -#}
{% macro clv_known_vars() %}
    {{ return([
        'clv_as_of_date', 'clv_bi_database_path', 'clv_columns', 'clv_csv_encoding', 'clv_currency',
        'clv_customers',
        'clv_cutoff_spacing_days', 'clv_decimal_separator', 'clv_ensemble_size', 'clv_events',
        'clv_explanations', 'clv_export_path', 'clv_extra_features', 'clv_horizon_days', 'clv_keep_models', 'clv_load_sample', 'clv_max_train_rows',
        'clv_max_validation_rows', 'clv_missing_customer_ids', 'clv_model_dir', 'clv_period_days',
        'clv_report_path', 'clv_retrain', 'clv_scoring_engine', 'clv_seasonal_backtests', 'clv_seed',
        'clv_segment_bounds',
        'clv_sequence_periods',
        'clv_time_zone', 'clv_timestamp_format', 'clv_training_cutoffs', 'clv_transactions',
    ]) }}
{% endmacro %}


{#-
    A clv_* var on the command line that clv does not read is a misspelling (clv_horizon_dayz):
    without this check the build would run on the default and say nothing. Stops with one line
    naming it and the known var it most likely meant (the longest common start). So does a
    clv var given without its prefix (as_of_date) while clv is the root project; in a project
    that installs clv, such a name may be that project's own var.
-#}
{% macro clv_check_var_names() %}
    {% set given = invocation_args_dict.get('vars') if invocation_args_dict is defined else none %}
    {% if given is not mapping %}
        {{ return('') }}
    {% endif %}
    {% set known = clv_known_vars() %}
    {% if project_name == 'clv' %}
        {% for name in given if name is string and ('clv_' ~ name) in known %}
            {{ exceptions.raise_compiler_error(
                "Unknown var '" ~ name ~ "': clv's vars start with clv_ (did you mean 'clv_"
                ~ name ~ "'?)"
            ) }}
        {% endfor %}
    {% endif %}
    {% for name in given if name is string and name.startswith('clv_') and name not in known %}
        {% set meant = clv_closest_name(name, known, 7) %}
        {{ exceptions.raise_compiler_error(
            "Unknown var '" ~ name ~ "': clv reads no var of that name"
            ~ (" (did you mean '" ~ meant ~ "'?)" if meant else '')
            ~ "; its vars are: " ~ (known | join(', '))
        ) }}
    {% endfor %}
{% endmacro %}


{#-
    The candidate that shares the longest start with `name` (case-insensitive), if that start
    is at least `min_length` characters; else, for a name of three characters or more, the
    first candidate one typo away (a letter left out, added, changed or two swapped); none
    otherwise. Finds the name meant behind a typo near the end (clv_horizon_dayz, Quantiy) or
    in a short name (totl for total).
-#}
{% macro clv_closest_name(name, candidates, min_length) %}
    {% set wanted = name | lower %}
    {% set best = namespace(name=none, length=0) %}
    {% for candidate in candidates %}
        {% set other = candidate | lower %}
        {% set common = namespace(length=0, open=true) %}
        {% for index in range([wanted | length, other | length] | min) %}
            {% if common.open and wanted[index] == other[index] %}
                {% set common.length = index + 1 %}
            {% else %}
                {% set common.open = false %}
            {% endif %}
        {% endfor %}
        {% if common.length > best.length %}
            {% set best.name, best.length = candidate, common.length %}
        {% endif %}
    {% endfor %}
    {% if best.length >= min_length %}
        {{ return(best.name) }}
    {% endif %}
    {% if wanted | length >= 3 %}
        {% for candidate in candidates %}
            {% if clv_one_typo_apart(wanted, candidate | lower) %}
                {{ return(candidate) }}
            {% endif %}
        {% endfor %}
    {% endif %}
    {{ return(none) }}
{% endmacro %}


{#- Whether two different texts are one typo apart: a letter left out or added, one changed,
    or two neighbours swapped. -#}
{% macro clv_one_typo_apart(first, second) %}
    {% if first == second %}
        {{ return(false) }}
    {% endif %}
    {% set shorter, longer = (first, second) if first | length <= second | length else (second, first) %}
    {% if longer | length - shorter | length == 1 %}
        {% for index in range(longer | length) %}
            {% if longer[:index] ~ longer[index + 1:] == shorter %}
                {{ return(true) }}
            {% endif %}
        {% endfor %}
        {{ return(false) }}
    {% endif %}
    {% if longer | length != shorter | length %}
        {{ return(false) }}
    {% endif %}
    {% set differ = [] %}
    {% for index in range(first | length) %}
        {% if first[index] != second[index] %}
            {% do differ.append(index) %}
        {% endif %}
    {% endfor %}
    {{ return(differ | length == 1
              or (differ | length == 2 and differ[1] == differ[0] + 1
                  and first[differ[0]] == second[differ[1]] and first[differ[1]] == second[differ[0]])) }}
{% endmacro %}
