"""Topic names and their explicit creation (auto-created topics get the wrong partition count)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from parley_shared.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    proposals: str
    decisions: str
    deliveries: str
    consent_changes: str
    dead_letters: str

    @classmethod
    def for_prefix(cls, prefix: str = "") -> Topics:
        return cls(
            proposals=f"{prefix}outreach.proposals",
            decisions=f"{prefix}outreach.decisions",
            deliveries=f"{prefix}outreach.deliveries",
            consent_changes=f"{prefix}consent.changes",
            dead_letters=f"{prefix}parley.dead-letters",
        )

    def all(self) -> tuple[str, ...]:
        return (
            self.proposals,
            self.decisions,
            self.deliveries,
            self.consent_changes,
            self.dead_letters,
        )


async def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create any missing Parley topic with the configured partition count; return those created."""
    topics = Topics.for_prefix(settings.topic_prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topics.all() if name not in existing]
        for name in missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            num_partitions=settings.partitions,
                            replication_factor=settings.replication_factor,
                        )
                    ]
                )
            except TopicAlreadyExistsError:
                # Another service created it between our listing and our request.
                log.debug("topic %s already exists", name)
        return missing
    finally:
        await admin.close()
