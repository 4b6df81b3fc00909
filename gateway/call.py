"""One call's record: what the caller asked (frozen once parsed) and what the call learns as it runs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from core import ratecard
from core.keys import Principal
from core.ledger import Hold
from core.limits import Admission
from core.models import new_id
from core.ratecard import ModelCard
from core.safejson import JSONObject
from gateway.canonical import ChatRequest, Usage
from gateway.protocols import registry
from gateway.protocols.contract import Codec
from gateway.responses_store import State
from gateway.routing import Router


@dataclass(frozen=True)
class Asked:
    """What the caller asked, as ``parse`` read it: fixed from then on."""

    raw: JSONObject  # the body's object (a chained Responses call's with the earlier turns in front)
    body: bytes  # the bytes the estimate reads (a chained Responses call's: ``raw`` encoded again)
    req: ChatRequest
    version: str | None = None  # the Anthropic version served (the asked one when known, else the first)
    forward: Mapping[str, str] = field(default_factory=dict)  # caller headers a same-protocol upstream gets
    include_usage: bool = True  # whether an OpenAI stream ends with its usage chunk
    session: str | None = None  # the sticky-routing session (``x-bytespike-session``, else the caller's user)
    state: State | None = None  # a Responses call's stored state (``gateway.responses_store``)


@dataclass
class Call:
    """Everything one request learns on its way through.

    ``protocol``, ``request_id`` and ``started`` name the call from its start, and
    ``asked`` (the parsed request, frozen) is set once by ``parse``; ``raw``,
    ``body``, ``req``, ``version``, ``forward``, ``include_usage``, ``session`` and
    ``state`` read it. The rest is running state, moved as the call goes:
    ``authenticated`` (read again when the key changed meanwhile), the judged
    ``cards``, ``input_tokens``, ``max_output`` and ``estimate`` (judged again
    then too), the ``admission`` (None once released) and the ``hold`` (None
    until reserved), and what the upstream attempts leave: ``router``,
    ``provider``, ``channel``, ``upstream_protocol``, ``served``,
    ``fallback_from``, ``fallback_reason`` and ``upstream_s``.
    """

    protocol: str  # the caller's: anthropic | openai | responses | gemini (a media call names its kind)
    codec: Codec = field(init=False)  # the caller's protocol's codec
    request_id: str = field(default_factory=lambda: new_id("req"))
    started: float = field(default_factory=time.perf_counter)
    asked: Asked | None = None
    authenticated: Principal | None = None  # None until the key is read (or when it was refused)
    cards: list[ModelCard] = field(default_factory=list)  # the asked model, then fallbacks
    input_tokens: int = 0
    max_output: int = 0
    estimate: int = 0
    admission: Admission | None = None
    hold: Hold | None = None
    router: Router | None = None
    provider: str = ""
    channel: str | None = None
    upstream_protocol: str = ""  # the wire of the channel that answered (metrics' protocol pair)
    served: ModelCard | None = None  # the card of the model that answered
    fallback_from: str | None = None
    fallback_reason: str | None = None
    upstream_s: float = 0.0
    # The last cost worked out (card, usage, credits): a stream's final event and its settle ask twice.
    _cost_memo: tuple[ModelCard, Usage, int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.codec = registry.codec(self.protocol)

    @property
    def principal(self) -> Principal:
        """The caller's key; read only once ``authenticate`` has admitted it."""
        if self.authenticated is None:
            raise RuntimeError(f"{self.request_id}: the caller's key is read before it was authenticated")
        return self.authenticated

    @property
    def raw(self) -> JSONObject | None:
        return self.asked.raw if self.asked is not None else None

    @property
    def body(self) -> bytes:
        return self.asked.body if self.asked is not None else b""

    @property
    def req(self) -> ChatRequest | None:
        return self.asked.req if self.asked is not None else None

    @property
    def version(self) -> str | None:
        return self.asked.version if self.asked is not None else None

    @property
    def forward(self) -> Mapping[str, str]:
        return self.asked.forward if self.asked is not None else {}

    @property
    def include_usage(self) -> bool:
        return self.asked.include_usage if self.asked is not None else True

    @property
    def session(self) -> str | None:
        return self.asked.session if self.asked is not None else None

    @property
    def state(self) -> State | None:
        return self.asked.state if self.asked is not None else None

    @property
    def stream(self) -> bool:
        return self.asked is not None and self.asked.req.stream

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started - self.upstream_s) * 1000)

    def cost_of(self, usage: Usage) -> int:
        """Cost of the reported usage at the served model's price (the reservation is no ceiling)."""
        card = self.served or self.cards[0]
        memo = self._cost_memo
        if memo is not None and memo[0] is card and memo[1] == usage:
            return memo[2]
        cost = ratecard.chat_cost_credits(card, usage)
        self._cost_memo = (card, usage, cost)
        return cost
