"""The user's files: reading inputs (UTF-8, ``file:line`` errors), writing outputs safely, and strict JSON.

Reading and writing live together because both guard the same thing, a user's own files: inputs are read
the way a user sees them, and outputs are replaced only by the rules of ``writing``.
"""

from __future__ import annotations

from l3prune.files.reading import (iter_csv, iter_jsonl, iter_lines, number_field, read_text, require_input_file,
                                   string_field)
from l3prune.files.strict_json import dumps, loads_strict, reject_nan_constant
from l3prune.files.writing import (EVERYTHING, MANIFEST, OLD_TAG, OVERWRITE_HINT, TEMP_TAG, already_exists,
                                   atomic_output, check_output, clean_stale, foreign_files, glob_escape, temp_sibling,
                                   write_json, write_text)

__all__ = [
    "EVERYTHING", "MANIFEST", "OLD_TAG", "OVERWRITE_HINT", "TEMP_TAG", "already_exists", "atomic_output",
    "check_output", "clean_stale", "dumps", "foreign_files", "glob_escape", "iter_csv", "iter_jsonl", "iter_lines", "loads_strict", "number_field",
    "read_text", "reject_nan_constant", "require_input_file", "string_field", "temp_sibling", "write_json",
    "write_text",
]
