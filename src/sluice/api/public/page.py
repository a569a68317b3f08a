"""H1/H2 (human-input.md §10): the web form page at ``/form/{token}``. Server-rendered (Jinja2), no
JavaScript; posts ``application/x-www-form-urlencoded`` to the shared submit; shares the P1/P2
rate-limit counters. Each ``{{#$output.name#}}`` becomes its widget in place."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from sluice.adapters.sql.tables import HumanInputForm
from sluice.api.deps import ContainerDep
from sluice.api.public.forms import limit, service
from sluice.services.errors import DomainError
from sluice.services.forms import (
    FormAlreadySubmitted,
    FormExpired,
    FormNotFound,
    InvalidFormData,
    Submitter,
)
from sluice.services.human_input import definition_actions, definition_inputs, resolved_defaults

router = APIRouter(include_in_schema=False)
templates = Environment(
    loader=PackageLoader("sluice.api.public", "templates"), autoescape=select_autoescape()
)
PLACEHOLDER = re.compile(r"\{\{#\$output\.([A-Za-z_][A-Za-z0-9_]{0,29})#\}\}")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def page(status: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template("form.html").render(**context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def state_page(
    status: int, state: str, heading: str, message: str, detail: str = "", app_name: str = ""
) -> HTMLResponse:
    return page(status, state=state, heading=heading, message=message, detail=detail, app_name=app_name)


def parts_of(form: HumanInputForm, values: dict[str, Any], errors: dict[str, str]) -> list[dict[str, Any]]:
    """Content split around placeholders; unreferenced inputs follow in order."""
    inputs = {}
    for item in definition_inputs(form):
        name = str(item.get("output_variable_name"))
        inputs[name] = {
            "name": name,
            "type": item.get("type"),
            "options": [str(o) for o in (item.get("option_source") or {}).get("value") or []],
            "value": values.get(name, ""),
            "error": errors.get(name),
        }
    parts: list[dict[str, Any]] = []
    placed: set[str] = set()
    pos = 0
    content = form.rendered_content
    for match in PLACEHOLDER.finditer(content):
        if content[pos : match.start()]:
            parts.append({"kind": "text", "text": content[pos : match.start()]})
        name = match.group(1)
        if name in inputs and name not in placed:
            parts.append({"kind": "input", "input": inputs[name]})
            placed.add(name)
        pos = match.end()
    if content[pos:]:
        parts.append({"kind": "text", "text": content[pos:]})
    parts += [{"kind": "input", "input": i} for n, i in inputs.items() if n not in placed]
    return parts


def open_page(
    token: str, form: HumanInputForm, app_name: str, values: dict[str, Any], errors: list[dict[str, Any]]
) -> HTMLResponse:
    by_field = {str(e["loc"][1]): str(e["msg"]) for e in errors if len(e.get("loc", [])) > 1}
    deadline = form.expiration_time.replace(tzinfo=UTC)
    return page(
        400 if errors else 200,
        state="open",
        token=token,
        app_name=app_name,
        heading=form.form_definition.get("node_title") or "Form",
        deadline=deadline.strftime("%Y-%m-%d %H:%M UTC"),
        deadline_iso=deadline.isoformat(),
        parts=parts_of(form, values, by_field),
        actions=definition_actions(form),
        errors=[
            {"msg": e["msg"], "field": str(e["loc"][1]) if len(e.get("loc", [])) > 1 else None}
            for e in errors
        ],
    )


def closed(exc: DomainError, app_name: str = "") -> HTMLResponse:
    if isinstance(exc, FormAlreadySubmitted):
        return state_page(
            412, "submitted", "Already answered", "This form has already been submitted", app_name=app_name
        )
    if isinstance(exc, FormExpired):
        return state_page(412, "expired", "Expired", "This form has expired", app_name=app_name)
    if isinstance(exc, FormNotFound):
        return state_page(404, "missing", "Not found", "This form does not exist.")
    if exc.status == 429:
        return state_page(429, "limited", "Too many requests", exc.message)
    raise exc


@router.get("/form/_static/form.css")
async def stylesheet() -> Response:
    css = templates.loader.get_source(templates, "form.css")[0]  # type: ignore[union-attr]
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/form/{token}")
async def show(token: str, request: Request, c: ContainerDep, done: int = 0) -> Response:
    try:
        await limit(request, c, "get")
        forms = service(c)
        found = await forms.find(token, None)
        app_name = await forms.app_name(found.form.app_id)
        form = found.form
        if done and form.status == "submitted":
            titles = {str(a.get("id")): str(a.get("title") or a.get("id")) for a in definition_actions(form)}
            chosen = titles.get(form.selected_action_id or "", form.selected_action_id or "")
            return state_page(200, "done", "Thank you", "Response recorded", f"You chose: {chosen}", app_name)
        try:
            forms.check_open(form)
        except DomainError as exc:
            return closed(exc, app_name)
        return open_page(token, form, app_name, resolved_defaults(form), [])
    except DomainError as exc:
        response = closed(exc)
        response.headers.update(exc.headers)
        return response


@router.post("/form/{token}")
async def submit(token: str, request: Request, c: ContainerDep) -> Response:
    try:
        await limit(request, c, "post")
        forms = service(c)
        found = await forms.find(token, None)
        app_name = await forms.app_name(found.form.app_id)
        fields = {
            k: v[0] for k, v in parse_qs((await request.body()).decode(), keep_blank_values=True).items()
        }
        action = fields.pop("action", "")
        declared = {
            str(i.get("output_variable_name")): str(i.get("type")) for i in definition_inputs(found.form)
        }
        inputs = {k: v for k, v in fields.items() if declared.get(k) in ("paragraph", "select")}
        try:
            await forms.submit(token, action, inputs, None, Submitter())
        except InvalidFormData as exc:
            return open_page(token, found.form, app_name, fields, exc.details)
        except (FormAlreadySubmitted, FormExpired) as exc:
            return closed(exc, app_name)
        return RedirectResponse(f"/form/{token}?done=1", status_code=303, headers=HEADERS)
    except DomainError as exc:
        response = closed(exc)
        response.headers.update(exc.headers)
        return response
