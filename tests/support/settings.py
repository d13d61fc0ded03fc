from __future__ import annotations

from pydantic import BaseModel


def setting_exists(model: type[BaseModel], env_name: str) -> bool:
    """Whether a PARLEY_ environment variable (nested with __) names a field of ``model``."""
    path = env_name.removeprefix("PARLEY_").lower().split("__")
    current: type[BaseModel] | None = model
    for part in path:
        if current is None or part not in current.model_fields:
            return False
        annotation = current.model_fields[part].annotation
        current = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return True
