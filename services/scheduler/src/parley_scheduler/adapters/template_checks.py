"""The template check port, answered by the messenger's ``POST /v1/template-checks``."""

from __future__ import annotations

import httpx
from parley_shared.events import Channel

from parley_scheduler.domain.templates import TemplateCheckUnavailable


class MessengerTemplateChecker:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self._url = base_url.rstrip("/") + "/v1/template-checks"
        self._timeout = timeout

    async def check(
        self, template: str, locale: str, channel: Channel, variables: tuple[str, ...]
    ) -> list[tuple[int | None, str]]:
        body = {
            "template": template,
            "locale": locale,
            "channel": channel.value,
            "variables": list(variables),
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self._url, json=body)
        except httpx.HTTPError as error:
            raise TemplateCheckUnavailable(
                f"cannot check templates: the messenger at {self._url} is unreachable "
                f"({type(error).__name__})"
            ) from error
        if response.status_code != 200:
            raise TemplateCheckUnavailable(
                f"cannot check templates: the messenger answered {response.status_code} "
                f"at {self._url}"
            )
        answer = response.json()
        return [(problem.get("line"), str(problem["reason"])) for problem in answer["problems"]]
