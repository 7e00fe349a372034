"""``python -m driftwire.schemas [DIRECTORY]``: rewrite the JSON Schema files from the models."""

import sys

from .export import SCHEMA_DIR, write_json_schemas


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: python -m driftwire.schemas [DIRECTORY]", file=sys.stderr)
        return 2
    for path in write_json_schemas(argv[0] if argv else SCHEMA_DIR):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
