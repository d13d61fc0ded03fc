"""The consent service's settings: the shared ones plus what only consent needs."""

from __future__ import annotations

from parley_shared.settings import ServiceSettings
from pydantic import Field


class ConsentSettings(ServiceSettings):
    """The contact rules are not settings: they ship as versioned data files in the package
    (``parley_consent/rules``), and each decision records the rule set's version."""

    http_port: int = Field(default=8102, ge=0, le=65535)
