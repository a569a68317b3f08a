"""The engine's ports (§1.4): side effects reach the engine only through these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sluice.engine.llm import ChatMessage, ModelProvider


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC."""
        ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class IdFactory(Protocol):
    def new(self, kind: str) -> str: ...


class CodeExecutionError(Exception):
    """The sandbox could not run the code, the code raised, or it broke a limit (§4.3).

    The message is what the node reports: for an exception in the user's code its last
    traceback line (``RuntimeError: boom``); for a limit, a sentence naming the limit.
    """


class CodeExecutor(Protocol):
    """Runs ``main`` of a Python 3 (``main(**inputs)``) or JavaScript (``main(inputs)``) program.

    ``language`` is ``python3`` or ``javascript``. ``limits`` may override the executor's
    configured defaults with any of ``cpu_time_s``, ``wall_time_s``, ``memory_bytes``,
    ``stdout_bytes`` and ``enable_network``; absent keys keep the defaults. Returns the mapping
    ``main`` returned; raises ``CodeExecutionError``. Cancelling the call kills the program.
    """

    async def run(
        self, language: str, code: str, inputs: dict[str, Any], limits: dict[str, Any]
    ) -> dict[str, Any]: ...


# -- HTTP (§4.5) --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A fully built request: the node resolves templates and encodes the body before sending."""

    method: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    content: bytes | None = None
    ssl_verify: bool = True


@dataclass(frozen=True, slots=True)
class HttpTimeouts:
    connect: float = 10
    read: float = 600
    write: float = 600


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The transport refuses a body over ``max_body_bytes`` (the larger of the node's text and
    file limits; the node applies the exact one once it knows which the response is)."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 20


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status_code: int
    headers: tuple[tuple[str, str], ...]
    content: bytes
    url: str
    """The final URL, after redirects."""


class HttpRequestError(Exception):
    """A request that got no usable response. ``error_type`` is the Dify name the node reports:
    ``RequestBlockedError`` (SSRF guard), ``ResponseSizeError``, ``InvalidURLError`` or
    ``HttpRequestNodeError`` (connection, TLS, timeout, too many redirects)."""

    def __init__(self, message: str, error_type: str = "HttpRequestNodeError") -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


class HttpTransport(Protocol):
    """Sends one request, following redirects; every address it connects to has passed the
    SSRF guard of §4.5."""

    async def send(
        self, request: HttpRequest, timeouts: HttpTimeouts, limits: HttpLimits
    ) -> HttpResponse: ...


# -- files and documents (§3.1, §4.12) ----------------------------------------------------------


class FileStoreError(Exception):
    """A file's bytes could not be read or stored (missing, not allowed, download failed)."""


class FileStore(Protocol):
    """Bytes of the file values of §3.1 (``local_file``, ``tool_file``, ``remote_url``)."""

    async def read(self, file: Mapping[str, Any]) -> bytes: ...

    async def save(self, content: bytes, name: str, mime: str) -> dict[str, Any]:
        """Store ``content`` as a new ``tool_file`` and return its file value."""
        ...


class DocumentError(Exception):
    """Text could not be extracted; the message is the node's error (``Unsupported Extension
    Type: .xyz``, ``Failed to extract text from PDF: ...``)."""


class DocumentExtractor(Protocol):
    """Plain text of a document, chosen by ``extension`` (with its dot) else by ``mime_type``."""

    async def extract(self, content: bytes, extension: str | None, mime_type: str | None) -> str: ...


# -- templates, human input, commands, pause (§1.4, §3.4, §4.13, §5.11, §5.12) --------------------


class TemplateRenderer(Protocol):
    """Renders a Jinja2 template with plain values; undefined names render ``""`` (Q15).

    Raises ``TimeoutError`` when rendering takes longer than ``timeout_s``; any other exception's
    text is the node's error."""

    async def render(self, template: str, variables: Mapping[str, Any], timeout_s: float) -> str: ...


@dataclass(frozen=True, slots=True)
class HumanInputRequest:
    """What a human-input node asks the service, once per execution (``execution_id`` is kept
    when a paused node re-runs, so the service finds the same form)."""

    run_id: str
    execution_id: str
    node_id: str
    node_title: str
    frame_id: str
    data: Mapping[str, Any]
    """The node's DSL ``data``."""
    rendered_content: str
    """``form_content`` with workflow variables substituted, ``{{#$output.x#}}`` kept."""
    values: Mapping[str, Any]
    """Values of the selectors the form reads (defaults, select options), keyed ``"ns.name"``;
    absent selectors are left out."""


@dataclass(frozen=True, slots=True)
class FormPending:
    """No answer yet: the node requests a pause on this form."""

    form_id: str


@dataclass(frozen=True, slots=True)
class FormSubmitted:
    form_id: str
    action_id: str
    action_title: str
    submitted_data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FormTimedOut:
    form_id: str
    expiration_time: int
    """Unix seconds of the node deadline."""


@dataclass(frozen=True, slots=True)
class FormFailed:
    """The form cannot complete (e.g. a select variable of the wrong type); the node fails."""

    error: str


FormDecision = FormPending | FormSubmitted | FormTimedOut | FormFailed


class HumanInputService(Protocol):
    """Finds or creates the form of a node execution and says where it stands (human-input.md §2.1)."""

    async def decide(self, request: HumanInputRequest) -> FormDecision: ...


class CommandSource(Protocol):
    """Commands for the current segment: ``Abort``, ``Pause`` or ``UpdateVariables`` objects of
    ``sluice.engine.commands`` (or their ``{"type": ...}`` dict forms)."""

    def __aiter__(self) -> Any: ...


class PauseGate(Protocol):
    """Called when the engine is idle with pause requests. Returns the execution ids of
    pause-requesting nodes whose forms were answered meanwhile: those re-run in this segment;
    with none, the engine emits ``run_paused``."""

    async def commit(self, snapshot: Mapping[str, Any], reasons: list[dict[str, Any]]) -> list[str]: ...


class ConversationMemory(Protocol):
    """Earlier turns of an advanced-chat conversation, oldest first (LLM-family memory, §4.11)."""

    async def history(self, conversation_id: str, limit: int) -> list[ChatMessage]: ...


@dataclass(slots=True)
class Ports:
    clock: Clock
    ids: IdFactory
    code: CodeExecutor | None = None
    http: HttpTransport | None = None
    files: FileStore | None = None
    documents: DocumentExtractor | None = None
    templates: TemplateRenderer | None = None
    """``None``: the built-in Jinja2 sandbox, rendered in a worker thread."""
    human_input: HumanInputService | None = None
    commands: CommandSource | None = None
    pause_gate: PauseGate | None = None
    models: ModelProvider | None = None
    memory: ConversationMemory | None = None
