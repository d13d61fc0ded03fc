"""The documented JSON Schemas match the models, and every documented example is valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from parley_consent.domain.evaluation import evaluate_case
from parley_consent.schemas import generated_schemas

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = sorted((DOCS / "examples" / "consent").glob("*.json"))


@pytest.mark.parametrize("name", sorted(generated_schemas()))
def test_the_schema_file_is_what_the_models_generate(name: str) -> None:
    # Regenerate with: uv run --no-sync python -m parley_consent.schemas docs/schemas
    assert (DOCS / "schemas" / name).read_text() == generated_schemas()[name]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_each_example_case_and_its_decision_follow_the_schemas(example: Path) -> None:
    case = json.loads(example.read_text())
    case_schema = json.loads(generated_schemas()["consent-case.schema.json"])
    decision_schema = json.loads(generated_schemas()["consent-decision.schema.json"])
    jsonschema.validate(case, case_schema)
    jsonschema.validate(evaluate_case(case), decision_schema)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4


def test_the_case_schema_rejects_a_misspelt_field() -> None:
    case = json.loads(EXAMPLES[0].read_text())
    case["histroy"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(case, json.loads(generated_schemas()["consent-case.schema.json"]))
