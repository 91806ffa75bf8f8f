"""A change to what a feature computes must raise FEATURE_DEFINITIONS, which saved models
record (so `clv_retrain: auto` retrains them and `never` warns). The feature SQL's text, with
comments and spacing left out, is recorded here per FEATURE_DEFINITIONS: when it changes, the
test asks which of the two the change is."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from clv.config import FEATURE_CHANGES, FEATURE_DEFINITIONS

ROOT = Path(__file__).resolve().parents[1]
# Every file that decides a feature's value: the features themselves, the settings they read
# (the windows, the channels, the declared static features), and the staging and checks of the
# rows they are computed from.
FEATURE_SQL = ("macros/features/*.sql", "models/3_features/*.sql",
               "macros/clv_sequence_columns.sql", "macros/clv_cancelled_to_zero.sql",
               "macros/clv_round.sql", "macros/clv_days_between.sql", "macros/clv_arg_max.sql",
               "macros/clv_collate_binary.sql", "macros/clv_type_double.sql",
               "macros/clv_settings.sql", "macros/clv_to_number.sql",
               "macros/clv_parse_timestamp.sql", "macros/clv_is_finite.sql",
               "macros/clv_time_zone.sql", "macros/clv_timestamp_patterns.sql",
               "macros/clv_trim_whitespace.sql", "macros/clv_id_text.sql",
               "macros/clv_add_days.sql", "macros/clv_regex_matches.sql",
               "macros/clv_source.sql", "macros/clv_column_map.sql",
               "models/1_staging/*.sql",
               "models/2_intermediate/int_clv__cutoffs.sql",
               "models/2_intermediate/int_clv__training_sample.sql",
               "models/2_intermediate/int_clv__transactions_checked.sql",
               "models/2_intermediate/int_clv__transactions_classified.sql",
               "models/2_intermediate/int_clv__customer_days.sql",
               "models/2_intermediate/int_clv__customer_category_first_dates.sql")
# FEATURE_DEFINITIONS -> the digest of the feature SQL that defines it
RECORDED = {2: "da8d5a46"}


def feature_sql_digest(root: Path = ROOT) -> str:
    """sha256 (first 8 hex digits) of the feature SQL without Jinja or SQL comments and with
    runs of whitespace as one space, file by file in name order."""
    digest = hashlib.sha256()
    paths = sorted({path for pattern in FEATURE_SQL for path in root.glob(pattern)})
    for path in paths:
        text = re.sub(r"\{#.*?#\}", " ", path.read_text(), flags=re.S)
        text = re.sub(r"--[^\n]*", " ", text)
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(" ".join(text.split()).encode())
    return digest.hexdigest()[:8]


def test_the_feature_sql_is_the_one_its_definitions_number_records():
    current = feature_sql_digest()
    assert RECORDED.get(FEATURE_DEFINITIONS) == current, (
        f"The feature SQL changed (digest {current}). If the change alters what a feature "
        "computes, raise FEATURE_DEFINITIONS in src/clv/config.py, say what changed in "
        f"FEATURE_CHANGES, and record {{<new number>: '{current}'}} here; if it does not "
        "(a rename, a faster query for the same values), record the new digest under "
        f"{FEATURE_DEFINITIONS}. A change to the groups of clv_feature_groups() "
        "(macros/clv_settings.sql) changes the units of feature importance and of the "
        "explanations: raise the number for it too, so that saved models retrain.")


def test_every_definitions_number_says_what_changed():
    assert set(FEATURE_CHANGES) == set(range(2, FEATURE_DEFINITIONS + 1))


def test_the_digest_ignores_comments_and_spacing(tmp_path):
    features = tmp_path / "macros" / "features"
    features.mkdir(parents=True)
    (features / "a.sql").write_text("select  x,\n  -- a note\n  y {#- why -#} from t\n")
    first = feature_sql_digest(tmp_path)
    (features / "a.sql").write_text("select x, y from t")
    assert feature_sql_digest(tmp_path) == first
    (features / "a.sql").write_text("select x, y + 1 from t")
    assert feature_sql_digest(tmp_path) != first


def test_the_plain_python_reference_computes_the_settings_windows():
    """tests/reference.py recomputes every trailing window for test_properties: a window added
    to the settings alone would never be compared with it."""
    import ast

    from reference import WINDOWS

    settings = (ROOT / "macros" / "clv_settings.sql").read_text()
    windows = re.search(r"'windows': (\[[0-9, ]+\])", settings).group(1)
    assert tuple(ast.literal_eval(windows)) == WINDOWS
