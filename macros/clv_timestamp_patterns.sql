{#-
    The text forms of a timestamp that clv_parse_timestamp reads without a format, as a regular
    expression for engines without DuckDB's try_cast: ISO dates and date-times as DuckDB reads
    them (date separator - or /, T or a space before the time, optional seconds, fraction and
    UTC offset), on whitespace-trimmed text. Spark alone would also take '2024' or '2024-01';
    PostgreSQL would take 'today' or 'Jan 5 2024'.
-#}
{% macro clv_iso_timestamp_regex() %}
    {#- seconds up to 59: PostgreSQL's cast reads a leap second (23:59:60) as the next minute,
        which DuckDB and Spark refuse -#}
    {{ return('^[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}'
              ~ '([ T][0-9]{1,2}:[0-9]{1,2}(:[0-5]?[0-9]([.][0-9]+)?)? *(' ~ clv_utc_offset_regex() ~ ')?)?$') }}
{% endmacro %}


{#-
    A UTC offset as a timestamp's text may end with: Z, or a sign and hours with optional
    minutes (+02, +0200, +02:00). Hours stop at 15 (PostgreSQL's limit): a larger offset makes
    the text invalid on every engine.
-#}
{% macro clv_utc_offset_regex() %}
    {{ return('Z|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?') }}
{% endmacro %}


{#-
    Matches a date-time whose text ends with an offset (clv_utc_offset_regex) after its time,
    on trimmed text; a date alone (2024-03-10) never does. `valid` false matches any two-digit
    hours and minutes, so an offset out of range can be told from none.
-#}
{% macro clv_timestamp_offset_regex(valid=true) %}
    {{ return(':[0-9]{1,2}([.][0-9]+)? *('
              ~ (clv_utc_offset_regex() if valid else 'Z|[+-][0-9]{2}(:?[0-9]{2})?') ~ ')$') }}
{% endmacro %}


{#-
    A strptime format (var clv_timestamp_format, as DuckDB's try_strptime reads it) translated
    for the engines without strptime. Returns a dict:
      postgres: the to_timestamp template ('%m/%d/%Y %H:%M' -> 'MM/DD/YYYY HH24:MI');
      spark: the datetime pattern ('%m/%d/%Y %H:%M' -> 'M/d/yyyy H:m': one letter reads one or
             two digits, as strptime does, where 'MM' would reject '1/2/2024'; two letters
             where two numbers touch, as in '%Y%m%d' -> 'yyyyMMdd');
      regex: a pattern the trimmed text must match first. It makes every engine as strict as
             strptime: to_timestamp ignores trailing text, matches any separator and reads a
             month or day 0 as 1 ('00/05/2010' as January 5).
    Literal letters are quoted for each engine. A directive outside the supported list stops
    compilation with an error naming it; with `strict` false it gives none instead (DuckDB,
    whose strptime reads more directives, checks the text against the regex where there is one).
-#}
{% macro clv_timestamp_format_patterns(format, strict=true) %}
    {#- directive: [postgres, spark, spark when next to a number, regex, regex when next to a number] -#}
    {% set numeric = {
        'Y': ['YYYY', 'yyyy', 'yyyy', '[0-9]{4}', '[0-9]{4}'],
        'm': ['MM', 'M', 'MM', '(0?[1-9]|1[0-2])', '(0[1-9]|1[0-2])'],
        'd': ['DD', 'd', 'dd', '(0?[1-9]|[12][0-9]|3[01])', '(0[1-9]|[12][0-9]|3[01])'],
        'H': ['HH24', 'H', 'HH', '[0-9]{1,2}', '[0-9]{2}'],
        'I': ['HH12', 'h', 'hh', '[0-9]{1,2}', '[0-9]{2}'],
        'M': ['MI', 'm', 'mm', '[0-9]{1,2}', '[0-9]{2}'],
        'S': ['SS', 's', 'ss', '[0-9]{1,2}', '[0-9]{2}'],
        'f': ['US', 'SSSSSS', 'SSSSSS', '[0-9]{1,6}', '[0-9]{6}'],
    } %}
    {% set textual = {
        'p': ['AM', 'a', '[AaPp][Mm]'],
        'b': ['Mon', 'MMM', '[A-Za-z]{3}'],
        'B': ['Month', 'MMMM', '[A-Za-z]+'],
    } %}
    {% set supported = '%Y %m %d %H %I %M %S %f %p %b %B %% (and %-m, %-d, %-H, %-I, %-M, %-S)' %}
    {#- Pass 1: the format as tokens, a directive letter or a literal character. -#}
    {% set tokens = [] %}
    {% set state = namespace(percent=false, dash=false, unsupported=false) %}
    {% for char in format %}
        {% if state.percent and char == '-' and not state.dash %}
            {% set state.dash = true %}
        {% elif state.percent %}
            {% if char == '%' and not state.dash %}
                {% do tokens.append({'literal': '%'}) %}
            {% elif char in numeric and (not state.dash or char in 'mdHIMS') %}
                {% do tokens.append({'directive': char}) %}
            {% elif char in textual and not state.dash %}
                {% do tokens.append({'directive': char}) %}
            {% elif not strict %}
                {% set state.unsupported = true %}
            {% else %}
                {{ clv_fail('clv_timestamp_format', "the directive %" ~ ('-' if state.dash else '') ~ char
                                                    ~ " is not supported on " ~ target.type ~ "; supported: "
                                                    ~ supported ~ (" (text with a UTC offset is read without a format,"
                                                    ~ " as ISO text such as 2024-03-10T23:30:00-05:00)"
                                                    if char in 'zZ' else '')) }}
            {% endif %}
            {% set state.percent = false %}
            {% set state.dash = false %}
        {% elif char == '%' %}
            {% set state.percent = true %}
        {% elif char in '"[]^\\' and not strict %}
            {% set state.unsupported = true %}
        {% elif char in '"[]^\\' %}
            {{ clv_fail('clv_timestamp_format', "the character " ~ char ~ " is not supported on " ~ target.type) }}
        {% else %}
            {% do tokens.append({'literal': char}) %}
        {% endif %}
    {% endfor %}
    {% if state.percent %}
        {{ clv_fail('clv_timestamp_format', "ends with an incomplete directive") }}
    {% endif %}
    {% if state.unsupported %}
        {{ return(none) }}
    {% endif %}
    {#- Pass 2: each engine's pattern; literal letters and digits go in quotes. -#}
    {% set out = namespace(postgres='', spark='', regex='^', postgres_quoted=false, spark_quoted=false) %}
    {% for token in tokens %}
        {% set previous = tokens[loop.index0 - 1] if not loop.first else {} %}
        {% set following = tokens[loop.index0 + 1] if not loop.last else {} %}
        {% set quote_postgres = 'literal' in token and token.literal.isalnum() %}
        {% set quote_spark = 'literal' in token and token.literal not in ' -/:.,' %}
        {% if out.postgres_quoted != quote_postgres %}
            {% set out.postgres = out.postgres ~ '"' %}
            {% set out.postgres_quoted = quote_postgres %}
        {% endif %}
        {% if out.spark_quoted != quote_spark %}
            {% set out.spark = out.spark ~ "\\'" %}
            {% set out.spark_quoted = quote_spark %}
        {% endif %}
        {% if 'literal' in token %}
            {% set out.postgres = out.postgres ~ token.literal %}
            {% set out.spark = out.spark ~ token.literal %}
            {% set out.regex = out.regex ~ (' +' if token.literal == ' ' else token.literal if token.literal.isalnum()
                                            else '[' ~ token.literal ~ ']') %}
        {% elif token.directive in numeric %}
            {% set pattern = numeric[token.directive] %}
            {% set touching = previous.get('directive') in numeric or following.get('directive') in numeric %}
            {% set out.postgres = out.postgres ~ pattern[0] %}
            {% set out.spark = out.spark ~ (pattern[2] if touching else pattern[1]) %}
            {% set out.regex = out.regex ~ (pattern[4] if touching else pattern[3]) %}
        {% else %}
            {% set pattern = textual[token.directive] %}
            {% set out.postgres = out.postgres ~ pattern[0] %}
            {% set out.spark = out.spark ~ pattern[1] %}
            {% set out.regex = out.regex ~ pattern[2] %}
        {% endif %}
    {% endfor %}
    {{ return({
        'postgres': out.postgres ~ ('"' if out.postgres_quoted else ''),
        'spark': out.spark ~ ("\\'" if out.spark_quoted else ''),
        'regex': out.regex ~ '$',
    }) }}
{% endmacro %}
