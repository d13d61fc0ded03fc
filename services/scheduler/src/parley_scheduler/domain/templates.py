"""What the scheduler needs from whoever owns templates: a check, before a campaign runs,
that every step's template exists for every locale and fits the variables supplied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from parley_shared.events import Channel

from parley_scheduler.domain.campaign import Campaign

# The variables every proposal carries (see ``planning.build_proposal``).
SUPPLIED_VARIABLES = ("name", "balance", "creditor", "reference")


@dataclass(frozen=True)
class TemplateProblem:
    step: int
    template: str
    locale: str
    channel: Channel
    line: int | None
    reason: str

    def describe(self) -> str:
        where = f", line {self.line}" if self.line is not None else ""
        return (
            f"steps.{self.step}.template {self.template!r} ({self.channel.value}, "
            f"{self.locale}{where}): {self.reason}"
        )


class TemplateCheckUnavailable(RuntimeError):
    """The templates could not be checked; a campaign must not start unchecked."""


class TemplateChecker(Protocol):
    async def check(
        self, template: str, locale: str, channel: Channel, variables: tuple[str, ...]
    ) -> list[tuple[int | None, str]]:
        """Problems as (line, reason); raises ``TemplateCheckUnavailable``."""
        ...


async def check_campaign_templates(
    campaign: Campaign, checker: TemplateChecker
) -> list[TemplateProblem]:
    problems = []
    seen: set[tuple[str, str, Channel]] = set()
    for index, step in enumerate(campaign.steps):
        for locale in campaign.checked_locales:
            if (step.template, locale, step.channel) in seen:
                continue
            seen.add((step.template, locale, step.channel))
            for line, reason in await checker.check(
                step.template, locale, step.channel, SUPPLIED_VARIABLES
            ):
                problems.append(
                    TemplateProblem(index, step.template, locale, step.channel, line, reason)
                )
    return problems
