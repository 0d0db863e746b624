"""Validate TOML files against keysmith's JSON Schema, as a TOML editor would.

Usage: schema_check.py SCHEMA.json FILE.toml...
Prints one line per file: "<file>: valid" or "<file>: invalid: <first error>"; exits 0.
"""

import datetime
import json
import sys
import tomllib

import jsonschema


def plain(value):
    """TOML dates and times become strings, as in the schema."""
    if isinstance(value, (datetime.date, datetime.time, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        validator = jsonschema.Draft202012Validator(json.load(f))
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            document = plain(tomllib.load(f))
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        if errors:
            print(f"{path}: invalid: {errors[0].message}")
        else:
            print(f"{path}: valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
