"""One attempt at a call: a channel, one key of its pool, the model name the upstream expects.

The ``Router`` yields these, best first, and learns from the outcome of each
(``Router.report``): which circuit the attempt probes, the status counters it
feeds and the account it was made for travel with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.channels import ChannelConfig

from .stats import Track
from .tenants import NO_TENANT


@dataclass(frozen=True)
class Target:
    """One attempt: a channel, one key of its pool, and the model name the upstream expects.

    ``probe`` names the circuit this attempt tests ("channel" or "tenant"), empty for a plain attempt.
    """

    channel: ChannelConfig
    key_index: int
    upstream_model: str
    session: str | None = field(default=None, compare=False, repr=False)  # hashed session key
    probe: str = field(default="", compare=False)
    track: Track | None = field(default=None, compare=False, repr=False)
    tenant: str = field(default=NO_TENANT, compare=False, repr=False)

    @property
    def api_key(self) -> str:
        return self.channel.api_keys[self.key_index]

    @property
    def key_label(self) -> str:
        return f"{self.channel.name}#{self.key_index}"

    def __repr__(self) -> str:  # never print keys
        return f"Target({self.key_label}, model={self.upstream_model!r}, probe={self.probe!r})"
