"""document-extractor (§4.12): the text of a file, or of each file of a list.

Bytes come from the ``FileStore`` port (uploads, tool files, remote URLs behind the SSRF guard);
text from the ``DocumentExtractor`` port, chosen by the file's extension, else its MIME type.
Failures carry no ``error_type``, as in the reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sluice.engine.nodes.base import Loc, Node, NodeError, NodeResult, Problems, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.ports import DocumentError
from sluice.engine.values import ABSENT, is_file

CAPABILITY = "File store"


@dataclass(frozen=True, slots=True)
class Prepared:
    selector: list[str]
    files: list[dict[str, Any]]
    single: bool


class DocumentExtractorNode(Node):
    type = "document-extractor"
    inline = False

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        if not isinstance(data.get("variable_selector"), list):
            return [(("variable_selector",), "variable_selector must be a selector")]
        return []

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        yield ("variable_selector",), data.get("variable_selector")

    def prepare(self, pool: VariablePool, ctx: RunContext) -> Prepared:
        selector = [str(s) for s in self.spec.data.get("variable_selector") or []]
        value = pool.get(selector)
        if value is ABSENT:
            raise NodeError(f"File variable not found for selector: {selector}", None)
        if is_file(value):
            return Prepared(selector, [value], True)
        if isinstance(value, list) and all(is_file(v) or not v for v in value):
            return Prepared(selector, [v for v in value if v], False)
        if not value:
            return Prepared(selector, [], False)
        raise NodeError(f"Variable {selector} is not an ArrayFileSegment", None)

    async def run(self, prepared: Prepared, ctx: RunContext) -> NodeResult:
        inputs = {"variable_selector": prepared.selector}
        process_data = {"documents": prepared.files}
        if not prepared.files:
            return NodeResult(inputs=inputs, process_data=process_data, outputs={"text": []})
        files, documents = ctx.ports.files, ctx.ports.documents
        if files is None or documents is None:
            return NodeResult.failure(f"{CAPABILITY} is not configured", "ServiceNotConfiguredError")
        texts: list[str] = []
        for file in prepared.files:
            extension = str(file.get("extension") or "").lower() or None
            if extension and not extension.startswith("."):
                extension = "." + extension
            mime_type = str(file.get("mime_type") or "") or None
            try:
                if extension is None and mime_type is None:
                    raise DocumentError(
                        "Unable to determine file type: MIME type or file extension is missing"
                    )
                try:
                    content = await files.read(file)
                except Exception as exc:
                    raise DocumentError(f"Error downloading file: {exc}") from exc
                texts.append(await documents.extract(content, extension, mime_type))
            except DocumentError as exc:
                return NodeResult.failure(str(exc), None, inputs=inputs, process_data=process_data)
        outputs = {"text": texts[0] if prepared.single else texts}
        return NodeResult(inputs=inputs, process_data=process_data, outputs=outputs)
