"""What the stand-ins accepted, kept in memory so tests and the demo can count messages."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Provider = Literal["twilio", "sendgrid"]


class RecordedMessage(BaseModel):
    """One message a stand-in accepted (it would have left for the recipient)."""

    model_config = ConfigDict(frozen=True)

    sequence: int = Field(description="Increases by one per accepted message, never reused.")
    provider: Provider
    message_id: str = Field(description="Twilio message sid or SendGrid X-Message-Id.")
    to: tuple[str, ...]
    sender: str | None
    subject: str | None = None
    body: str
    traceparent: str | None = Field(description="The W3C traceparent header, when sent.")
    custom_args: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(
        default_factory=dict, description="Email headers asked for, e.g. List-Unsubscribe."
    )
    status_callback: str | None = None
    validity_period: int | None = None
    received_at: datetime


class MessageLog:
    """Accepted messages in arrival order. The app runs in one event loop, so no lock."""

    def __init__(self) -> None:
        self._messages: list[RecordedMessage] = []
        # Sequence numbers survive a clear, so "after N" queries stay meaningful.
        self._sequence = itertools.count(1)

    def next_sequence(self) -> int:
        return next(self._sequence)

    def add(self, message: RecordedMessage) -> None:
        self._messages.append(message)

    def list(self, *, provider: Provider | None = None, after: int = 0) -> list[RecordedMessage]:
        return [
            message
            for message in self._messages
            if message.sequence > after and (provider is None or message.provider == provider)
        ]

    def clear(self) -> int:
        count = len(self._messages)
        self._messages.clear()
        return count
