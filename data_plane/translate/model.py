"""The canonical model where inbound dialects and upstream kinds meet.

A client's request is read into a `Request`; an upstream kind writes its own
request from it. An upstream's answer is read into a `Response`, or, streamed,
into `Event`s, which the client's dialect writes back. Every translator is a
small pure function (or, for a stream, a small object holding that stream's
state) from one of these to bytes of a wire format or back.

Conventions every translator keeps:
- Tool results are parts of a user message (as in Anthropic's Messages API); an
  OpenAI `tool` message becomes a user message of `ToolResult` parts.
- `Usage.input_tokens` counts the whole prompt, cached tokens included (as
  OpenAI reports it); `cached_input_tokens` and `cache_write_tokens` say how much
  of it was read from or written to a prompt cache. `reasoning_tokens` are part of
  `output_tokens`.
- Stream content is a sequence of blocks, numbered from 0 in the order they
  start: `BlockStart`, then deltas for that block, then `BlockStop`. A decoder of
  a wire format that does not frame blocks (OpenAI's chunks) opens and closes
  them itself; an encoder of such a format needs only the deltas.
- A field the target cannot express is refused with `BadRequest` naming it
  (`param`), never dropped.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from shared.errors import BadRequest, GatewayError

__all__ = [
    "BlockStart",
    "BlockStop",
    "Delta",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "Event",
    "Finish",
    "Image",
    "Message",
    "Part",
    "Request",
    "Response",
    "Start",
    "StopReason",
    "StreamError",
    "Text",
    "Thinking",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "ToolResult",
    "Usage",
    "UsageEvent",
]

_decode_object = msgspec.json.Decoder(dict[str, Any]).decode

StopReason = Literal["end", "max_tokens", "stop_sequence", "tool_use", "content_filter"]


class Text(msgspec.Struct, tag="text"):
    text: str


class Image(msgspec.Struct, tag="image"):
    """An image, either inline (`data`, base64, with its `media_type`) or by `url`."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class Thinking(msgspec.Struct, tag="thinking"):
    """A model's reasoning, as Anthropic (and Bedrock) return it; `signature` must go
    back unchanged with it in a later turn. `redacted` holds encrypted reasoning."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


class ToolCall(msgspec.Struct, tag="tool_call"):
    id: str
    name: str
    arguments: str = ""  # JSON text, as the model wrote it

    def input(self, param: str) -> dict[str, Any]:
        """The arguments as a JSON object (none: empty), for a kind that takes them
        parsed; `BadRequest` naming `<param>.arguments` if they are not one."""
        if not self.arguments.strip():
            return {}
        try:
            return _decode_object(self.arguments)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise BadRequest(
                "A tool call's arguments must be a JSON object.", param=f"{param}.arguments"
            ) from None


class ToolResult(msgspec.Struct, tag="tool_result"):
    call_id: str
    content: list[Text | Image] = []
    is_error: bool = False


Part = Text | Image | Thinking | ToolCall | ToolResult


class Message(msgspec.Struct):
    role: Literal["user", "assistant"]
    content: list[Part]


class Tool(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = {}  # JSON Schema of the arguments (an object)


class ToolChoice(msgspec.Struct):
    """`auto`: the model decides; `none`: no tool; `required`: some tool; `tool`: the
    one `name`. `parallel` False: at most one call per turn (None: the default)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None
    parallel: bool | None = None


class Request(msgspec.Struct):
    model: str
    messages: list[Message]
    system: list[Text] = []
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = []
    tools: list[Tool] = []
    tool_choice: ToolChoice | None = None
    stream: bool = False
    user: str | None = None  # an end-user id for the upstream's abuse monitoring
    # extended thinking: a token budget (Anthropic, Gemini, Claude on Bedrock) or an
    # effort ("low", "medium", "high": OpenAI's reasoning models); a writer whose
    # kind cannot express the one given refuses it
    thinking_budget: int | None = None
    reasoning_effort: str | None = None
    # where the client put a part, by its place here (`messages[i].content[j]`), when
    # that is elsewhere (OpenAI's system messages are not messages here, its tool
    # results and the user's next words are one message): errors name the client's
    origins: dict[str, str] = {}

    def place(self, i: int, j: int) -> str:
        """The client's path of part `j` of message `i`, for an error naming it."""
        here = f"messages[{i}].content[{j}]"
        return self.origins.get(here, here)


class Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


class Response(msgspec.Struct):
    id: str
    model: str
    content: list[Part]  # Text, Thinking and ToolCall parts
    stop_reason: StopReason = "end"
    stop_sequence: str | None = None
    usage: Usage | None = None  # None: the upstream did not say
    created: int = 0  # unix seconds; 0: unknown (an encoder uses the time it writes)


# -- a stream, event by event -----------------------------------------------------


class Start(msgspec.Struct, tag="start"):
    """The answer begins. `usage` if the upstream tells the prompt's size up front."""

    id: str = ""
    model: str = ""
    usage: Usage | None = None


class BlockStart(msgspec.Struct, tag="block_start"):
    """Block `index` begins: a `Text`, a `Thinking` or a `ToolCall` (its `arguments`
    empty; they follow as deltas)."""

    index: int
    part: Text | Thinking | ToolCall


class Delta(msgspec.Struct, tag="delta"):
    """More of block `index`: text, thinking, a tool call's arguments (JSON text) or a
    thinking block's signature."""

    index: int
    kind: Literal["text", "thinking", "arguments", "signature"]
    value: str


class BlockStop(msgspec.Struct, tag="block_stop"):
    index: int


class Finish(msgspec.Struct, tag="finish"):
    stop_reason: StopReason
    stop_sequence: str | None = None


class UsageEvent(msgspec.Struct, tag="usage"):
    """The usage so far (the last one seen is the answer's)."""

    usage: Usage


class StreamError(msgspec.Struct, tag="error"):
    """The upstream sent an error mid-stream; the stream ends with it."""

    error: GatewayError


Event = Start | BlockStart | Delta | BlockStop | Finish | UsageEvent | StreamError


# -- embeddings -----------------------------------------------------------------


class EmbeddingsRequest(msgspec.Struct):
    model: str
    inputs: list[str]
    dimensions: int | None = None
    user: str | None = None


class EmbeddingsResponse(msgspec.Struct):
    model: str
    vectors: list[list[float]]
    usage: Usage | None = None  # input tokens; None: the upstream did not say
