"""The JSON Schemas of the evaluate interface, generated from its pydantic models.

``python -m parley_consent.schemas DIR`` writes them; a test fails when the files in
``docs/schemas`` differ from what the models generate, so the two cannot drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from parley_consent.domain.evaluation import Case, CaseDecision

SCHEMA_FILES: dict[str, tuple[type[BaseModel], Literal["validation", "serialization"], str]] = {
    "consent-case.schema.json": (Case, "validation", "A case for the consent evaluate interface"),
    "consent-decision.schema.json": (CaseDecision, "serialization", "A consent decision"),
}


def generated_schemas() -> dict[str, str]:
    """File name to file text, exactly as written to disk."""
    files: dict[str, str] = {}
    for name, (model, mode, title) in SCHEMA_FILES.items():
        schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://parley.example/schemas/{name}",
            **model.model_json_schema(mode=mode),
        }
        schema["title"] = title
        files[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/schemas")
    target.mkdir(parents=True, exist_ok=True)
    for name, text in generated_schemas().items():
        (target / name).write_text(text)
        print(f"wrote {target / name}")


if __name__ == "__main__":
    main()
